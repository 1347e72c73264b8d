"""A throwaway single-node Slurm on localhost for tests: munged, slurmctld and slurmd (Debian's
slurmctld, slurmd, slurm-client and munge packages), all in one temporary folder with a fresh munge
key, free ports and no accounting, started by `local_slurm()` and stopped by their pids at exit.
Needs root (slurmd runs jobs as their users). `why_no_slurm()` says why it cannot run here."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "sinfo")


def why_no_slurm() -> str | None:
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return (
            f"no local Slurm: {', '.join(missing)} not installed (apt-get install slurmctld slurmd slurm-client "
            "munge; .ci/run does)"
        )
    if os.geteuid() != 0:
        return "a local slurmd must run as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _conf(d: Path) -> str:
    return "\n".join(
        [
            "ClusterName=nstbenchtest",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            f"AuthInfo=socket={d}/munge.sock",
            "CredType=cred/munge",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd.log",
            # no cgroups, no accounting daemon: what a container allows
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/builtin",
            f"NodeName=localhost NodeHostname={socket.gethostname()} CPUs={os.cpu_count() or 1} RealMemory=2000 "
            "State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _stop(d: Path) -> None:
    for pidfile in ("slurmd.pid", "slurmctld.pid", "munged.pid"):  # only the daemons started here
        p = d / pidfile
        try:
            pid = int(p.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            continue
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)


@contextlib.contextmanager
def local_slurm(timeout: float = 30.0):
    """Start the three daemons; yields the environment (SLURM_CONF) a client needs. A daemon that
    does not come up raises RuntimeError with its log's tail."""
    d = Path(tempfile.mkdtemp(prefix="nstslurm-", dir="/tmp"))  # short: the munge socket path has a limit
    (d / "state").mkdir()
    (d / "spool").mkdir()
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    d.chmod(0o700)
    (d / "slurm.conf").write_text(_conf(d))
    env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf")}
    try:
        subprocess.run(
            [
                _exe("munged"),
                "-f",
                f"--key-file={key}",
                f"--socket={d}/munge.sock",
                f"--log-file={d}/munged.log",
                f"--pid-file={d}/munged.pid",
                f"--seed-file={d}/munge.seed",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        subprocess.run([_exe("slurmctld"), "-i"], check=True, env=env, capture_output=True)
        subprocess.run([_exe("slurmd"), "-N", "localhost"], check=True, env=env, capture_output=True)
        t = time.time()
        while time.time() - t < timeout:
            p = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            if p.stdout.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            logs = " | ".join((d / f).read_text()[-300:] for f in ("slurmctld.log", "slurmd.log") if (d / f).exists())
            raise RuntimeError(f"the local Slurm node did not become idle in {timeout:.0f} s: {logs}")
        yield env
    finally:
        _stop(d)
        shutil.rmtree(d, ignore_errors=True)
