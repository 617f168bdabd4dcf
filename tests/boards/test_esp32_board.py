"""The ESP32 board layer (boards/esp32) without the hardware.

- every module compiles for the ESP32 (mpy-cross -march=xtensawin);
- board.py runs under the unix `micropython` binary against a fake `machine`
  (tests/boards/fake_machine.py: pins, an in-memory UART, an SPI bus feeding
  a model of the ST7789) — tests/boards/esp32_checks.py drives it;
- the names it uses from machine, framebuf, micropython, time, os, ... exist,
  with those arguments, in the micropython-esp32-stubs (tests/boards/stubcheck.py).
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from amanat import mpy, paths

HERE = Path(__file__).resolve().parent
BOARD = Path(paths.board_dir("esp32"))
MODULES = sorted(p for p in BOARD.glob("*.py") if p.name not in ("manifest.py", "__init__.py")) + [
    paths.boards_dir() / "board_base.py"]


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_compiles_for_esp32(module, tmp_path):
    out = tmp_path / "out.mpy"
    proc = subprocess.run([paths.mpy_cross_bin(), "-march=xtensawin", "-o", str(out), str(module)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def test_manifest_freezes_the_application(tmp_path, monkeypatch):
    """Run manifest.py as MicroPython's tools/manifestfile.py does: from its
    own folder (relative paths are relative to it), $(VAR)s substituted."""
    frozen = {}

    def resolve(p):
        return (BOARD / p.replace("$(PORT_DIR)", str(tmp_path))).resolve()

    def include(p):
        frozen["<include>"] = resolve(p)

    def module(name, base_path="."):
        frozen[name[:-3]] = resolve(base_path) / name

    def package(name, base_path=".", files=None, opt=None):
        frozen[name] = resolve(base_path) / name

    monkeypatch.setenv("EMBIT_ROOT", str(paths.embit_root()))
    monkeypatch.chdir(BOARD)
    exec((BOARD / "manifest.py").read_text(), {"include": include, "module": module, "package": package})
    firmware = Path(paths.firmware_dir())
    assert frozen["<include>"] == tmp_path / "boards" / "manifest.py"  # the port's own modules
    assert frozen["main"] == firmware / "main.py"  # frozen main.py runs at boot
    assert frozen["signer"] == firmware / "signer"
    assert frozen["embit"] == paths.embit_root() / "embit"
    assert frozen["board"] == BOARD / "board.py" and frozen["st7789"] == BOARD / "st7789.py"
    assert frozen["board_base"] == paths.boards_dir() / "board_base.py"  # the interface board.py implements
    for name, path in frozen.items():
        assert name == "<include>" or path.exists(), path


# ---- under MicroPython, against the fake machine


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    fake = tmp_path_factory.mktemp("fake")
    shutil.copy(HERE / "fake_machine.py", fake / "machine.py")
    shutil.copy(HERE / "fake_esp32.py", fake / "esp32.py")
    flash = tmp_path_factory.mktemp("flash")
    with pytest.MonkeyPatch.context() as mp:  # the environment reaches the micropython process
        mp.setenv("AMANAT_TEST_FLASH", str(flash))
        # a large heap: each fake panel is a 200 KB framebuffer, which a fragmented 2 MB heap may not have in one piece
        out = mpy.run_json((HERE / "esp32_checks.py").read_text(), extra_path=[fake, BOARD], timeout=60,
                           heap=16 * 1024 * 1024)
    return {r.pop("check"): r for r in out}


def test_mount_flash_creates_the_data_folder(checks):
    assert checks["flash"] == {"existed_before": False, "exists": True}


def test_display_init(checks):
    r = checks["init"]
    # SWRESET, SLPOUT, COLMOD, MADCTL, INVON, NORON, then the clearing window
    assert r["cmds"] == [0x01, 0x11, 0x3A, 0x36, 0x21, 0x13, 0x2A, 0x2B, 0x2C]
    assert r["pixels"] == 240 * 135 * 2  # init clears the glass; the board then draws "Starting"
    assert r["backlight"] == 1
    assert r["spi_id"] == 1 and r["baud"] == 30_000_000


def test_serial_round_trip_non_blocking(checks):
    r = checks["serial"]
    assert r["uart"] == [0, 115200, 4096, 0]  # UART0, rxbuf 4096, timeout 0
    assert r["roundtrip"], "all 256 byte values (0x03 included) must arrive as sent"
    assert r["reads"] == 2  # 1536 bytes through a 1024-byte read buffer
    assert r["empty"] == "" and r["empty_ms"] <= 5
    assert r["write_ok"] and r["tx_ok"]
    assert r["uart_writes"] == 3072 // 64  # partial writes are continued
    assert 55 <= r["idle_ms"] <= 200  # wait() sleeps the whole timeout without input...
    assert r["woke_ms"] <= 30  # ...and returns as soon as a byte is there


def test_stream_channel_of_stock_builds(checks):
    assert checks["stream"] == {"roundtrip": True, "write_ok": True, "tx_ok": True}
    r = checks["stock"]
    assert r["channel"] == "StreamChannel"
    assert "REPL" in r["note"] and "260-byte" in r["note"]


def test_show_paginates_and_draws(checks):
    r = checks["show"]
    assert (r["cols"], r["rows"]) == (15, 6)  # 2x font in the body
    assert r["lines"] == ["Send 0.01000000", "BTC to", "bc1qar0srrr7xfk", "vy5l643lydnw9re", "59gtzzwf5mdq",
                          "Change", "0.00500000 BTC", "to"]
    assert r["pages"] == 4
    assert r["pixels"] == 240 * 135  # every visible pixel once per page...
    assert r["outside"] == 0  # ...and none outside the glass (offsets 40, 53)
    assert r["max_data"] <= 480  # one pixel row per SPI write, no frame buffer
    assert r["writes"] < 250 and r["deselected"] == 0
    # What the panel holds, pixel for pixel, against framebuf's own drawing.
    assert r["title_errors"] == 0
    assert r["body_errors"] == 0
    assert r["addr_errors"] == 0
    assert r["footer"] == "<hold:NO       1/4       next>"
    assert r["footer_errors"] == 0


def test_buttons(checks):
    r = checks["buttons"]
    assert r["pages"] == 4
    assert r["short_right"] == [[], 1]  # next page
    assert r["short_left"] == [[], 0]  # previous page
    assert r["left_on_first"] == [[], 0]
    assert r["bounce"] == 0  # contact bounce is no press
    assert r["glitch"] == [[], 0]  # neither is a 20 ms blip
    assert r["hold_right_early"] == [[], 1]  # a hold before the last page only turns it
    assert r["footer_last"] == "<back hold:NO  4/4   hold:YES>"
    assert r["hold_right_last"] == ["approve"]
    assert r["hold_left"] == ["reject"]
    assert r["short_hold_left"] == []  # 0.9 s is short: a page turn, not an answer
    assert r["one_page"] == [1, "<hold:NO     1/1     hold:YES>", ["approve"]]
    assert r["held_over"] == []  # held from the previous prompt: ignored
    assert r["held_over_again"] == ["approve"]
    assert r["both"] == ["reject"]  # both held: never approve
    assert r["text"][:2] == [[], []]  # text prompts: no answers from buttons.buttons()
    assert r["idle"] == [] and r["idle_wait_ms"] >= 45  # nothing on screen: presses do nothing


def test_pin_typed_on_the_buttons(checks):
    """A whole ask_text on the board: short presses turn the wheel, a 0.7 s
    hold of the right button takes a digit, of the left one deletes."""
    r = checks["pin_entry"]
    assert r["pin"] == "2580" and r["left"] == []
    presses = r["presses"]
    assert presses.count("hold R") == 6 and presses.count("hold L") == 1
    # each digit's wheel starts at a random digit: the finger turns it the
    # short way round, so which short presses it needs varies from run to run
    assert set(presses) <= {"R", "L", "hold R", "hold L"}
    assert r["pumps"] > 0  # the request loop ran while the officer typed
    assert r["ms"] < 60_000
    # What was drawn: the typed digits only as '*', the wheel one digit at a
    # time, the rest the prompt (error first) and the key hints.
    typed_row, wheel_row = r["rows"][:2]
    static = {"Choose a PIN", "The PINs", "differ, try", "again", "4 to 12 digits", "",
              "<prev hold:del hold:pick next>", "Amanat", "Done"}
    typed, wheel = set(), set()
    for y, s in r["drawn"]:
        if y == typed_row:
            typed.add(s)
        elif y == wheel_row:
            wheel.add(s)
        else:
            assert s in static, s
    assert typed - {"", "Done"} == {"_", "*_", "**_", "***_", "****_"}  # blank, then after: the status
    assert [r["rows"][2], "The PINs"] in r["drawn"]  # the error first, under the wheel
    assert all(sum(c.isdigit() for c in s) <= 1 for s in wheel)
    assert {s.strip() for s in wheel} >= {"<  2  >", "<  5  >", "<  8  >", "<  0  >", "<  DONE  >"}
    # Nothing of the PIN in the audit trail, nor anywhere in the flash.
    assert '"screen":"setup_pin"' in r["audit"] and '"answer":"text"' in r["audit"]
    assert "2580" not in r["audit"] and '"entry":"pin"' in r["audit"]
    assert r["files"] == ["audit.jsonl"]


def test_audit_trail_rotates_into_the_archive_unbroken(checks):
    r = checks["audit"]
    assert r["names"][:2] == ["audit.1.jsonl", "audit.jsonl"]
    assert [f.rsplit("/", 2)[1:] for f in r["files"]] == [["data", "audit.1.jsonl"], ["data", "audit.jsonl"]]
    older, newer = r["sizes"]
    assert 600 <= older < 600 + 160  # the current file became the archive at half the capacity
    assert r["trail"]["used"] == older + newer and r["trail"]["percent"] > 100  # the firmware refuses from 100
    assert r["ends"] == ["", ""]  # the board ends every line
    assert r["ns"] == list(range(40)) and r["seqs"] == list(range(1, 41))  # none lost between the files
    assert r["links"]  # one chain across them
    last = json.loads(r["last"])
    assert r["last"] == json.dumps(last, sort_keys=True, separators=(",", ":"))  # canonical, as written
    assert last["title"] == "Send bitcoin? \u20bf" and last["answer"] == "approve" and last["format"] == 2
    assert r["trail"]["seq"] == 40


def test_the_device_key_is_made_once_and_kept_out_of_the_filesystem(checks):
    r = checks["device_key"]
    assert r["length"] == 32 and r["same"] and not r["in_flash"]
    assert r["hmac"] == 32


def test_device_log_rotates(checks):
    r = checks["log"]
    assert r["names"] == ["device.1.log", "device.log"]
    assert r["tail"].endswith("ValueError: boom\n")


# ---- against the stubs


@pytest.fixture(scope="module")
def stubs():
    import stubcheck

    root = stubcheck.stub_root()
    if root is None:
        pytest.skip("micropython-esp32-stubs is not installed (pip install -e '.[test]')")
    return stubcheck, root


def _sources():
    return {p.stem: p.read_text() for p in MODULES}


def test_uses_only_what_the_esp32_stubs_declare(stubs):
    stubcheck, root = stubs
    c = stubcheck.Checker(root)
    assert c.check(_sources()) == []
    # The hardware calls were all followed to a stub class, not skipped.
    for what in ("machine.UART()", "machine.UART.any", "machine.UART.readinto", "machine.UART.write",
                 "machine.Pin()", "machine.Pin.value", "machine.Pin.__call__", "machine.Pin.PULL_UP",
                 "machine.SPI()", "machine.SPI.write", "framebuf.FrameBuffer()", "framebuf.FrameBuffer.text",
                 "framebuf.MONO_HLSB", "micropython.kbd_intr", "select.poll.poll", "time.ticks_diff"):
        assert what in c.checked, what


@pytest.mark.parametrize("wrong, right", [
    ("rxbuf=RX_BUF", "rx_buffer=RX_BUF"),  # a constructor keyword
    ("self.uart.any()", "self.uart.available()"),  # a method
    ("Pin.PULL_UP", "Pin.PULLUP"),  # a class constant
    ("micropython.kbd_intr(-1)", "micropython.keyboard_interrupt(-1)"),  # a module function
    ("time.sleep_ms(1)", "time.sleep_ms(ms=1)"),  # a positional-only argument
    ("self.pin.value() == 0", "self.pin.value(0, 1) == 0"),  # too many arguments
])
def test_the_stub_check_catches(stubs, wrong, right):
    stubcheck, root = stubs
    src = _sources()
    assert wrong in src["board"]
    src["board"] = src["board"].replace(wrong, right, 1)
    assert stubcheck.Checker(root).check(src), f"{right} was not caught"
