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


def test_vector_extensions_name_the_widest():
    from neuralcodec.machine import vector_extensions

    assert vector_extensions({"avx2", "avx512f", "avx512_bf16"}) == "AVX-512 bf16"
    assert vector_extensions({"avx2", "avx512f"}) == "AVX-512"
    assert vector_extensions({"avx2", "avx512f", "amx_bf16"}) == "AMX bf16"
    assert vector_extensions({"sse4_1", "avx2"}) == "AVX2"
    assert vector_extensions(set()) == "no AVX2"


def test_cpu_description_starts_with_the_name():
    from neuralcodec.machine import cpu_description, cpu_name

    assert cpu_description().startswith(cpu_name())
