"""What the schemas cannot see in run.sh's manifests: that the pieces fit together.

    python check_manifests.py MANIFESTS SHARDS

Checks that the shard Job runs SHARDS-1 pods at once, that the coordinator's DNS name
(hostname.subdomain) is what every pod dials and the headless Service selects it and only
it, that the profile is mounted where the pod reads it, and runs each pod's shell command
under /bin/sh with a stand-in `surge` to check the command line it builds.
"""

import base64
import os
import shlex
import subprocess
import sys
import tempfile

import yaml


def main() -> None:
    path, shards = sys.argv[1], int(sys.argv[2])
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind: dict = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    service = one(by_kind, "Service")
    jobs = {j["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: j
            for j in by_kind["Job"]}
    coord, others = jobs["coordinator"], jobs["shard"]
    run_cm = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("surge-run-"))
    params = run_cm["data"]

    spec = service["spec"]
    check(spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True,
          "the Service is headless and publishes the coordinator before it is Ready")
    check({"rendezvous": 7070, "metrics": 9090} == {p["name"]: p["port"] for p in spec["ports"]},
          "the Service has the rendezvous and metrics ports")
    sel = spec["selector"]
    check(sel.items() <= coord["spec"]["template"]["metadata"]["labels"].items(),
          "the Service selects the coordinator's pod")
    check(not sel.items() <= others["spec"]["template"]["metadata"]["labels"].items(),
          "the Service does not select the other shards")
    check("surge-run" in sel, "the Service selects this run's pods only")

    check(others["spec"]["completionMode"] == "Indexed", "the shard Job is Indexed")
    check(others["spec"]["completions"] == shards - 1 == others["spec"]["parallelism"],
          f"the shard Job runs {shards - 1} pods at once")
    for job in (coord, others):
        check(job["spec"]["backoffLimit"] == 0, "no Job reruns a shard")
        check(job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True,
              "pods run as non-root")
    pod = coord["spec"]["template"]["spec"]
    host = f'{pod["hostname"]}.{pod["subdomain"]}'
    check(pod["subdomain"] == service["metadata"]["name"],
          "the coordinator's subdomain is the Service")
    claim = next(v for v in pod["volumes"] if v["name"] == "results")["persistentVolumeClaim"]
    check(claim["claimName"] in [c["metadata"]["name"] for c in by_kind["PersistentVolumeClaim"]],
          "the coordinator's claim is rendered")
    check("persistentVolumeClaim" not in str(others["spec"]["template"]["spec"]["volumes"]),
          "the other shards hold no claim")
    secrets = [s for s in by_kind.get("Secret", [])
               if s["metadata"]["name"].startswith("surge-rendezvous-")]
    check(len(secrets) == 1, "the run has one rendezvous key Secret")
    secret = secrets[0]
    check(len(base64.b64decode(secret["data"]["key"])) >= 16,
          "the rendezvous key is at least 16 bytes (surge refuses shorter ones)")
    for job in (coord, others):
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        refs = [e["valueFrom"]["secretKeyRef"] for e in env if e["name"] == "SURGE_RENDEZVOUS_KEY"]
        check(refs == [{"name": secret["metadata"]["name"], "key": "key"}],
              "every pod reads the run's rendezvous key from its Secret")

    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "surge")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
        os.chmod(fake, 0o755)
        for job, index, shard in ((coord, None, 0), (others, shards - 2, shards - 1)):
            if job is others and shards == 1:
                continue
            c = job["spec"]["template"]["spec"]["containers"][0]
            check(c["image"] != "surge", "the image is the overlay's")
            env = {"PATH": f"{tmp}:/usr/bin:/bin", **params,
                   **{e["name"]: e["value"] for e in c["env"] if "value" in e}}
            check(env["RENDEZVOUS_HOST"] == host, f"every shard dials {host}")
            if index is not None:
                env["JOB_COMPLETION_INDEX"] = str(index)
            argv = run(c, env)
            want = ["run", f'/profile/{params["PROFILE"]}', "--target", params["TARGET"],
                    "--shard", f"{shard}/{shards}", "--rendezvous", f"{host}:7070",
                    "--join-timeout", params["JOIN_TIMEOUT"], "--out", "/results", "--no-progress"]
            if shard == 0:
                want += ["--metrics-addr", "0.0.0.0:9090"]
            if params["MIN_SHARDS"]:
                want += ["--min-shards", params["MIN_SHARDS"]]
            if params["UPLOAD"]:
                want += ["--upload", params["UPLOAD"]]
            check(argv == want, f"shard {shard} runs: surge {shlex.join(want)} (got {argv})")
            # With the optional Secret's token in the environment, and only then, surge is
            # told its name (never its value).
            argv = run(c, {**env, "SURGE_TOKEN": "t"})
            check(argv == want + ["--token-env", "SURGE_TOKEN"], "the token is passed by name")
            items = next(v for v in job["spec"]["template"]["spec"]["volumes"]
                         if v["name"] == "profile")["configMap"]["items"]
            check({i["key"]: i["path"] for i in items}
                  == {"profile.toml": params["PROFILE"], "system.toml": params["SYSTEM_PATH"]},
                  "the profile and its system model are mounted where the profile names them")


def run(container: dict, env: dict) -> list:
    """The command line the container's shell gives `surge`, one argument a line."""
    return subprocess.run([*container["command"], *container["args"]], env=env, check=True,
                          capture_output=True, text=True).stdout.splitlines()


def one(by_kind: dict, kind: str) -> dict:
    check(len(by_kind.get(kind, [])) == 1, f"one {kind}")
    return by_kind[kind][0]


def check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f"check_manifests: not so: {what}")


if __name__ == "__main__":
    main()
