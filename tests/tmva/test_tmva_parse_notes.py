"""What the parser notes (a TrainingStrategy entry glued to the next by a missing ',', as in
TMVA_RNN_Classification.C's dense network) reaches the plan's notes, so bptt train and bptt
tutorial print it; before, network_from_options switched the parser's warning off and lost it."""

import warnings

from bptt.tmva.network import network_from_options, plan_from_options
from bptt.tmva.tutorial import DNN_OPTIONS


def test_a_glued_entry_is_in_the_plans_notes():
    text = DNN_OPTIONS.format(epochs=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_from_options(text, seed=1)
    glued = [n for n in plan.notes if "MaxEpochs=20DropConfig=0.0+0.+0.+0." in n]
    assert len(glued) == 1 and "write 'MaxEpochs=20,DropConfig=0.0+0.+0.+0.' to set both" in glued[0]
    assert plan.phases[0]["epochs"] == 20


def test_network_from_options_warns_with_it():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network_from_options(DNN_OPTIONS.format(epochs=20), seed=1)
    text = " ".join(str(w.message) for w in caught)
    assert "looks like two entries without a ','" in text
