"""Training sets chosen from a model's samples (sample.py output): naive SFT sets, agreement (stage I)
and confidence pairs for DPO (stage II) in samples.py; verifier step rows in verifier_rows.py.
"""
