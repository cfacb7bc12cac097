"""Data: everything a training or evaluation row comes from, in four parts.

    jsonl.py, provenance.py   JSON Lines, resumable outputs, settings files and what an output came from
    rows.py, tasks.py         what every reader shares: the prompt, field checks, SFT rows, step rows; task
                              rows and few-shot examples
    world/                    the built-in world, the sets built from a pool at a chosen quality, their
                              measured quality
    sources/                  outside releases, one module each over one row reader (reader.py)
    selection/                training sets chosen from a model's samples: naive, agreement, confidence
                              pairs, verifier step rows
    datadir.py                the data directory data_prep.py writes: sets, benchmarks, manifest
"""
