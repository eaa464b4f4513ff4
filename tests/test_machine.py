import subprocess

from neuralcodec import machine


def test_cpu_name_is_a_non_empty_line():
    name = machine.cpu_name()
    assert name and name == name.strip() and "\n" not in name


def test_cpu_name_falls_back_without_cpuinfo_or_lscpu(monkeypatch):
    def missing(*args, **kwargs):
        raise OSError("not here")

    monkeypatch.setattr(machine.Path, "read_text", missing)
    monkeypatch.setattr(subprocess, "run", missing)
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    monkeypatch.setattr(machine.platform, "machine", lambda: "riscv64")
    assert machine.cpu_name() == "riscv64"
