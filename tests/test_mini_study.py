"""experiments/mini_study.py end to end at toy size (--smoke): every stage runs, every condition gets a
result, the report names them all, and a rerun resumes instead of redoing finished runs."""
import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "experiments"))

import mini_study  # noqa: E402
import runner  # noqa: E402
import weak_to_strong  # noqa: E402


def run_smoke(out: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "mini_study.py"), "--smoke", "--out", out],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


# Stage I, its control and stage II need agreeing answers: not at toy size. These Q5 models are measured.
Q5_MEASURED = {weak_to_strong.TEACHER, weak_to_strong.TEACHER_LONG, weak_to_strong.ICL, weak_to_strong.NAIVE}


def check_results_rows(out: str) -> list[dict]:
    """One row per run of every condition, each with its test results; the teacher's samples measured."""
    with open(os.path.join(out, "results.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    conditions = {row["condition"] for row in rows}
    study_runs = set(mini_study.CONDITIONS) | {"stage1", mini_study.TEACHER_RUN}
    assert study_runs | Q5_MEASURED <= conditions
    assert conditions <= study_runs | set(weak_to_strong.CONDITIONS)
    assert len(rows) == len(conditions)  # one seed in the smoke study, one row per run
    for row in rows:
        for bench in mini_study.BENCHES:
            result = row["benches"][bench]
            problems = mini_study.SMOKE.num_test if bench == "miniworld" else mini_study.SMOKE.num_long_test
            assert result["problems"] == problems
            assert 0.0 <= result["accuracy"] <= 1.0

    # The teacher's samples became a training set whose error rates were measured on it.
    with open(os.path.join(out, "data", f"{mini_study.TEACHER_SET}_seed0.jsonl")) as f:
        teacher_rows = [json.loads(line) for line in f]
    assert 0 < len(teacher_rows) <= mini_study.SMOKE.num_hard  # empty samples are left out (and counted)
    assert all(isinstance(r["meta"]["correct"], bool) and 0 <= r["meta"]["step_error_rate"] <= 1 for r in teacher_rows)
    return rows


def check_q5(out: str, report: str) -> None:
    """Q5 (experiments/weak_to_strong.py): every model measured, PGR and label quality computed from the files."""
    q5 = report.split("## Q5.")[1]
    for condition in weak_to_strong.CONDITIONS:
        assert f"(`{condition}`) |" in q5  # a row each, measured or "not run"
    for condition in (*Q5_MEASURED, weak_to_strong.BASE, weak_to_strong.CEILING):  # stage 1, the ceiling: the study's
        assert f"(`{condition}`) | not run" not in q5
    assert "teacher's labels right" in q5 and "PGR" in q5 and "Plateau check (seed 0)" in q5
    assert "DPO's settings on the validation split" in q5
    for a, b, _ in weak_to_strong.COMPARISONS:
        assert f"| `{a}` - `{b}` |" in q5
    assert os.path.exists(os.path.join(out, "q5", "data", f"{weak_to_strong.STAGE1}_seed0.report.json"))
    assert os.path.exists(os.path.join(out, "q5", "grid.json"))
    if importlib.util.find_spec("matplotlib"):  # the figure is optional: CI installs no matplotlib
        assert os.path.exists(os.path.join(out, "weak_to_strong.png"))


def check_q6(out: str, report: str) -> None:
    """Q6: every verifier of every seed scored the same K samples of the test set, never above pass@K."""
    import easy_to_hard
    with open(os.path.join(out, "easy_to_hard.jsonl")) as f:
        e2h = [json.loads(line) for line in f]
    scorers = (*easy_to_hard.VERIFIERS, *easy_to_hard.BASELINES)
    assert {(r["verifier"], r["seed"]) for r in e2h} == {(v, 0) for v in scorers}
    k, problems = easy_to_hard.SMOKE.k, easy_to_hard.SMOKE.test_problems
    for row in e2h:
        assert row["verifier"] not in easy_to_hard.VERIFIERS or row["agg"] == easy_to_hard.VERIFIERS[row["verifier"]][3]
        assert row["k"] == k
        assert list(row["curves"]) == [str(x) for x in (1, 2, 4) if x <= k]
        for kk, c in row["curves"].items():
            assert c[f"best_of@{kk}"] <= c[f"pass@{kk}"] and c[f"weighted_maj@{kk}"] <= c[f"pass@{kk}"]
        assert all(len(v) == problems for v in row["outcomes"].values())
        assert row["outcomes"]["maj"] == e2h[0]["outcomes"]["maj"]  # one set of samples, scored by each
        assert all(v is None or 0 <= v <= 1 for v in row["stats"]["outcome"].values())
    seed_dir = os.path.join(out, "easy_to_hard", "seed0")
    steps = [json.loads(line) for line in open(os.path.join(seed_dir, "prm_easy.jsonl"))]
    assert 0 < len(steps) <= easy_to_hard.SMOKE.easy_tasks * easy_to_hard.SMOKE.samples_easy  # balanced
    assert all(len(r["steps"]) == len(r["labels"]) for r in steps)
    oprm = [json.loads(line) for line in open(os.path.join(seed_dir, "oprm_easy.jsonl"))]
    assert any(r["id"].endswith("/outcome") for r in oprm)
    eval_rows = [json.loads(line) for line in open(os.path.join(seed_dir, "prm_easy", "eval", "miniworld.jsonl"))]
    assert len(eval_rows) == problems
    assert all(len(r["scores"]) == k and all(0 <= s <= 1 for s in r["scores"]) for r in eval_rows)
    assert "## Q6. Does a verifier trained on easy problems re-rank hard ones?" in report
    assert f"best-of-{k} prm_easy" in report and "**Sanity gates.**" in report
    assert f"best-of-{k} oracle" in report and f"best-of-{k} logprob" in report
    assert "ORM ≈ PRM" in report and "OPRM best" in report


def check_q7(out: str, report: str) -> None:
    """Q7: every condition of the seed has a row with its per-problem outcomes; RL runs have a training curve."""
    import easy_to_hard_rl
    with open(os.path.join(out, "easy_to_hard_rl.jsonl")) as f:
        q7 = [json.loads(line) for line in f]
    assert {(r["condition"], r["seed"]) for r in q7} == {(c, 0) for c in easy_to_hard_rl.CONDITIONS}
    for row in q7:
        assert row["k"] == easy_to_hard_rl.SMOKE.k
        assert all(len(v) == easy_to_hard_rl.SMOKE.test_problems for v in row["outcomes"].values())
        assert (row["curve"] is not None) == (easy_to_hard_rl.CONDITIONS[row["condition"]][1][0] != "study")
    assert "## Q7. Does RL from a verifier trained on easy problems teach hard ones?" in report
    assert "(`grpo_prm`) | not run" not in report and "machinery check" in report


def test_smoke_study_has_every_condition_and_resumes(tmp_path):
    out = str(tmp_path / "study")
    first = run_smoke(out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    rows = check_results_rows(out)

    with open(os.path.join(out, "RESULTS.md")) as f:
        report = f.read()
    for condition in mini_study.CONDITIONS:
        assert f"`{condition}`" in report
    for question in mini_study.QUESTIONS:
        assert question.title in report
    assert "## Weak to strong" in report
    check_q5(out, report)
    check_q6(out, report)
    check_q7(out, report)

    # The invocation records the sources' fingerprint, and the report says that one version ran it all.
    with open(os.path.join(out, "invocations.jsonl")) as f:
        assert [json.loads(line)["code"] for line in f] == [runner.code_fingerprint()]
    assert "every invocation ran the same sources" in report
    # Every command's run time is recorded, and the report says where the time went.
    commands = [json.loads(line) for line in open(os.path.join(out, "commands.jsonl"))]
    assert {"train", "sample", "evaluate", "data_prep"} <= {c["script"] for c in commands}
    assert all(c["seconds"] >= 0 and os.path.exists(c["log"]) for c in commands) and sum(c["seconds"] for c in commands)
    assert "Where the time went" in report and "| all |" in report

    # A rerun finds every run finished: nothing is trained again, no row is added.
    second = run_smoke(out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "start " not in second.stdout
    with open(os.path.join(out, "results.jsonl")) as f:
        assert len(f.readlines()) == len(rows)


def test_statistics():
    stats = runner.mean_and_spread([0.5, 0.6, 0.7])
    assert abs(stats["mean"] - 0.6) < 1e-12 and abs(stats["std"] - 0.1) < 1e-12
    assert abs(stats["se"] - 0.1 / 3 ** 0.5) < 1e-12
    assert runner.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert runner.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0


def test_interval_uses_t_at_n_minus_1_and_the_test_term():
    iv = runner.interval([0.5, 0.6, 0.7])  # s = 0.1, n = 3: t(2) = 4.303
    assert abs(iv.mean - 0.6) < 1e-12 and abs(iv.half - 4.303 * 0.1 / 3 ** 0.5) < 1e-9
    # The test term adds to the seeds' variance before the t quantile scales it.
    iv = runner.interval([0.5, 0.6, 0.7], test_variance=0.01)
    assert abs(iv.half - 4.303 * (0.01 / 3 + 0.01) ** 0.5) < 1e-9
    # Per-problem outcomes: problems 1 and 2 differ by 1 and 0 between a and b, averaged over two seeds.
    a = [[1, 1, 0, 0], [1, 1, 0, 0]]
    b = [[0, 1, 0, 0], [0, 1, 0, 0]]
    # per-problem differences [1, 0, 0, 0]: mean 0.25, sample variance 0.25, over 4 problems
    assert abs(runner.per_problem_test_variance(a, b) - 0.25 / 4) < 1e-12
    assert runner.per_problem_test_variance([[1, 0]]) == 0.5 / 2  # [1, 0]: sample variance 0.5
    assert runner.decide(runner.interval([0.1, 0.12, 0.11])) == "reproduced"
    assert runner.decide(runner.interval([0.1, 0.12, 0.11]), expected_sign=-1) == "contradicted"
    assert runner.decide(runner.interval([0.1, -0.12, 0.11])) == "no clear difference"
    assert runner.decide(runner.interval([-0.1, -0.12, -0.11]), expected_sign=0) == "clearly lower"
    # The paper expects a negative difference: an interval across zero decides nothing either way.
    assert runner.decide(runner.interval([-0.069, 0.052, -0.01]), expected_sign=-1) == "no clear difference"
    assert runner.decide(runner.interval([-0.1, -0.12, -0.11]), expected_sign=-1) == "reproduced"
    assert runner.decide(runner.interval([0.1, -0.12, 0.11]), expected_sign=0) == "no clear difference"


def test_differences_are_paired_by_seed_and_problem():
    """Conditions of one seed share its stage-1 model: the comparison is of per-seed differences."""
    def row(condition, seed, outcomes):
        accuracy = sum(outcomes) / len(outcomes)
        return {"condition": condition, "seed": seed,
                "benches": {"miniworld": {"problems": len(outcomes), "accuracy": accuracy, "step_accuracy": accuracy,
                                          "outcomes": outcomes, "step_outcomes": outcomes}}}

    # A seed's stage 1 moves both conditions together; b always misses the first problem a solves.
    runs = {0: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 1: [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], 2: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]}
    results = [row("a", s, o) for s, o in runs.items()]
    results += [row("b", s, [0] + o[1:]) for s, o in reversed(runs.items())]  # any order in the file
    iv = runner.paired_interval(results, "a", "b")
    assert abs(iv.mean - 0.1) < 1e-12 and iv.seed_se < 1e-12
    # The seeds agree exactly; what is left is the test set's term: one problem of ten carries the difference.
    assert abs(iv.test_se ** 2 - runner.per_problem_test_variance([[1] + [0] * 9], [[0] * 10])) < 1e-12
    assert runner.decide(iv) == "no clear difference"  # one problem of ten is not evidence
    unpaired = runner.condition_interval(results, "a")
    assert abs(unpaired.mean - 0.5) < 1e-12 and unpaired.half > 0.2


def test_sub_half_has_one_sub_task_per_hard_task(tmp_path):
    from w2s.data.jsonl import read_jsonl, write_jsonl

    hard = [{"id": f"mw-{i}", "messages": [], "meta": {}} for i in range(4)]
    subs = [{"id": f"mw-{i}-sub{j}", "messages": [], "meta": {"parent_id": f"mw-{i}"}}
            for i in range(4) for j in (1, 2)]
    write_jsonl(str(tmp_path / "h.jsonl"), hard)
    write_jsonl(str(tmp_path / "s.jsonl"), subs)
    mini_study.write_sub_half(str(tmp_path / "h.jsonl"), str(tmp_path / "s.jsonl"), str(tmp_path / "o.jsonl"))
    rows = read_jsonl(str(tmp_path / "o.jsonl"))
    assert [r["id"] for r in rows[:4]] == [r["id"] for r in hard] and len(rows) == 8
    assert sorted(r["meta"]["parent_id"] for r in rows[4:]) == [f"mw-{i}" for i in range(4)]


def test_questions_pick_their_conditions():
    assert mini_study.needed_conditions(["q1"]) == ["hard_full", "hard_full_e0.9", "easy_sub", "easy_sub_prefix"]
    assert mini_study.TEACHER_SET in mini_study.needed_conditions(["q4"])
    assert mini_study.needed_conditions(["q1", "q2", "q3", "q4"]) == mini_study.CONDITIONS


def test_weak_to_strong_table_puts_each_student_next_to_its_supervision():
    def row(condition, seed, accuracy, steps):
        return {"condition": condition, "seed": seed,
                "benches": {"miniworld": {"problems": 1000, "accuracy": accuracy, "step_accuracy": steps}}}

    results = [row("hard_full_e0.9", s, 0.6, 0.8) for s in range(3)]
    quality = {"hard_full_e0.9": {"outcome_error": 0.9, "step_error": 0.5, "examples": 10}}
    header, rule, line = mini_study.weak_to_strong_table(results, quality)
    cells = [c.strip() for c in line.strip("|").split("|")]
    # supervision 10% right -> student 60%: +50 points; steps 50% -> 80%: +30 points.
    assert cells[1] == "10.0" and cells[2].startswith("60.0 [") and cells[3:5] == ["+50.0", "50.0"]
    assert cells[5].startswith("80.0 [") and cells[6] == "+30.0"
    assert len(mini_study.weak_to_strong_table([], quality)) == 2  # a condition not run has no row


def test_a_study_starts_no_command_once_the_sources_changed(tmp_path):
    repo = tmp_path / "repo"
    (repo / "w2s" / "data").mkdir(parents=True)
    (repo / "experiments").mkdir()
    (repo / "train.py").write_text("print('train')\n")
    (repo / "w2s" / "data" / "rows.py").write_text("X = 1\n")
    (repo / "experiments" / "notes.txt").write_text("not a source\n")
    (repo / "experiments" / "study.py").write_text("STEPS = 1\n")
    before = runner.code_fingerprint(str(repo))
    assert runner.code_fingerprint(str(repo)) == before
    (repo / "experiments" / "notes.txt").write_text("edited, still not a source\n")
    assert runner.code_fingerprint(str(repo)) == before
    (repo / "experiments" / "study.py").write_text("STEPS = 2\n")
    assert runner.code_fingerprint(str(repo)) != before  # the record covers the study's scripts

    workers = runner.Workers(1, 1, repo=str(repo))  # processes start on the first command: none here
    try:
        (repo / "experiments" / "study.py").write_text("STEPS = 3\n")  # loaded once by the study: safe
        workers.check_code()
        (repo / "w2s" / "data" / "rows.py").write_text("X = 2\n")  # a module deep in w2s/ edited mid-study
        with pytest.raises(runner.CodeChanged, match=workers.command_code):
            workers.run("train", [], str(tmp_path / "log"))
        assert not (tmp_path / "log").exists()  # refused before the command started
    finally:
        workers.shutdown()


def test_report_names_every_version_of_the_sources():
    assert "same sources (fingerprint abc)" in mini_study.code_versions([{"code": "abc"}, {"code": "abc"}])
    mixed = mini_study.code_versions([{"code": "abc"}, {"code": "def"}, {}])
    assert "3 versions" in mixed and "abc, def, not recorded" in mixed
    assert "predate" in mini_study.code_versions([{}])


def test_ctrl_c_stops_the_study_records_its_time_and_a_rerun_resumes(tmp_path):
    """Ctrl-C reaches the study and its workers (one process group, as in a terminal): no job starts
    after it, the time spent is recorded, and the same command resumes."""
    out = str(tmp_path / "study")
    command = [sys.executable, os.path.join(ROOT, "experiments", "mini_study.py"), "--smoke", "--out", out]
    # As from a terminal: Ctrl-C's default action, even where this test runs with SIGINT ignored (a shell
    # script's background job), which a child would inherit.
    study = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in study.stdout:  # interrupt once stage 1 (a training run) has started
        if "start  stage 1" in line:
            break
    os.killpg(study.pid, signal.SIGINT)
    stdout, stderr = study.communicate(timeout=120)
    assert study.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "interrupted; rerun the same command to resume" in stderr
    with open(os.path.join(out, "invocations.jsonl")) as f:
        (row,) = [json.loads(line) for line in f]
    assert row["interrupted"] and row["minutes"] >= 0
    assert not os.path.exists(os.path.join(out, "RESULTS.md"))
    results = os.path.join(out, "results.jsonl")
    finished = len(open(results).readlines()) if os.path.exists(results) else 0
    assert finished <= 2  # at most the runs that were already finishing; nothing started after Ctrl-C

    rerun = run_smoke(out)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    with open(os.path.join(out, "results.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == len({(r["condition"], r["seed"]) for r in rows})  # nothing duplicated
    with open(os.path.join(out, "RESULTS.md")) as f:
        assert "(interrupted)" in f.read()


def test_command_costs_by_part_and_command(tmp_path):
    """Where the time goes: each command's record, summed by the study's folder and by script."""
    from runner import command_costs
    out = str(tmp_path)
    rows = [{"script": "train", "log": os.path.join(out, "runs", "hard_full", "seed0", "train.log"), "seconds": 120},
            {"script": "evaluate", "log": os.path.join(out, "runs", "hard_full", "seed0", "eval.log"), "seconds": 30},
            {"script": "sample", "log": os.path.join(out, "q5", "labels", "x.log"), "seconds": 300}]
    lines = command_costs(rows, out, worker_minutes=10.0)
    assert lines[2] == "| q5 | 0.0 | 5.0 | 0.0 | 0.0 | 5.0 |"  # the most expensive part first
    assert lines[3] == "| runs | 2.0 | 0.0 | 0.5 | 0.0 | 2.5 |"
    assert lines[4] == "| all | 2.0 | 5.0 | 0.5 | 0.0 | 7.5 |"
    assert lines[-1].startswith("Commands ran 7.5 of the workers' 10.0 minutes; the other 2.5")
