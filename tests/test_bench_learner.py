from jaximpala.cli import main


def test_bench_learner_runs_on_the_driving_network(capsys):
    assert main(["bench", "learner", "--unroll-length", "2", "--batch-size", "2",
                 "--updates", "1", "--algos", "impala,appo"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if "frames/s=" in line]
    assert [row[0] for row in rows] == ["impala", "appo"]
    assert all(float(row[-1].split("=")[-1]) > 0 for row in rows)
