"""Progress a pipe can read: one plain line per logged step, and lines for resuming and calibrating."""
import io

from ssae.progress import TrainLog, duration, is_pipe, log_line


def test_a_log_line_says_step_loss_speed_and_eta():
    line = log_line(1200, 30000, 0.0123456789, 3.2149, 8961.0)
    assert line == "step 1200/30000 (4%) loss 0.0123457 3.21 steps/s ETA 2h29m"
    assert "\r" not in line and "\n" not in line
    assert log_line(0, 10, float("nan"), 0.0, None).endswith("ETA ?")
    assert [duration(s) for s in (0, 59.4, 61, 3600, 3725, None, float("inf"))] == \
        ["0s", "59s", "1m01s", "1h00m", "1h02m", "?", "?"]


def test_is_pipe_tells_a_terminal_from_a_pipe():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert is_pipe(io.StringIO()) and not is_pipe(Tty())
    closed = io.StringIO()
    closed.close()
    assert is_pipe(closed)


def test_train_log_prints_every_log_every_steps_and_the_last_one():
    out, now = io.StringIO(), [100.0]
    log = TrainLog(total=10, every=4, start=2, out=out, clock=lambda: now[0])
    assert log.enabled  # a StringIO is not a terminal
    log.resumed("runs/x", 2)
    for step in range(3, 11):
        now[0] += 0.5  # 2 steps/s
        log.step(step, 0.5)
    log.calibrating(10)
    lines = out.getvalue().splitlines()
    assert lines == ["resuming runs/x from step 2 of 10",
                     "step 4/10 (40%) loss 0.5 2 steps/s ETA 3s",
                     "step 8/10 (80%) loss 0.5 2 steps/s ETA 1s",
                     "step 10/10 (100%) loss 0.5 2 steps/s ETA 0s",
                     "calibrating the scoring on 10 validation images"]
    quiet = io.StringIO()
    log = TrainLog(total=10, every=1, out=quiet, enabled=False)
    log.step(1, 0.1)
    log.say("x")
    assert quiet.getvalue() == ""


def test_calibration_tells_its_stages(mvtec_dir):
    from ssae.calibration import calibrate_model
    from ssae.config import override, profile
    from ssae.data import load_split
    from ssae.references import BlurReference

    cfg = override(profile("smoke"), calibration={"search": True})
    split = load_split(str(mvtec_dir), cfg.data)
    cfg.model.in_channels = split.channels
    lines = []
    calibrate_model(BlurReference(2.0), cfg, split, log=lines.append)
    assert lines[0].startswith("calibration: reconstructing") and "validation image" in lines[0]
    assert any(" scorings compared" in ln for ln in lines)
    assert lines[-1].startswith("calibration: chose Diff")
