#!/usr/bin/env python3
"""Checks compose/docker-compose.yml and the Dockerfile without Docker (the
test machine has no Docker engine), against the real usagestream binary.

  check_compose.py --binary BIN [--smoke ...] COMPOSE DOCKERFILE

Static checks: the file parses (anchors and merge keys included) and
interpolates like Compose does (${VAR:-default}, ${VAR:?error}); secrets have
no defaults; every published port binds 127.0.0.1; depends_on and named
volumes resolve; images are pinned; every usagestream service runs a real
subcommand with real flags (`BIN <command> --help`), and sets only
environment variables that command reads; the HTTP address is 0.0.0.0
explicitly, with a query API token; the Dockerfile is a multi-stage static
build of ./cmd/usagestream with go.mod's Go version, run as non-root.

With --smoke (and --brokers, --registry, --postgres-url of a real cluster),
every usagestream service is started as Compose would start it (same command
and environment; container paths mapped to temporary folders, the cluster
addresses and HTTP ports replaced by local ones), in depends_on order: each
must become ready, a generated billing file dropped into the ingest folder
must be ingested and moved to done/, and all must stop cleanly on SIGTERM.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

import yaml

INFRA_IMAGES = {"kafka": "apache/kafka:", "registry": "apicurio/apicurio-registry:", "postgres": "postgres:"}
SECRETS = ["POSTGRES_PASSWORD", "USAGESTREAM_API_TOKEN", "GRAFANA_ADMIN_PASSWORD"]


class Problems(list):
    def add(self, where, msg):
        self.append(f"{where}: {msg}")


def interpolate(value, env, where, problems):
    """Compose's variable substitution, for the forms this file uses."""
    pattern = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        val = env.get(name)
        if op in (":-", "-"):
            if val is None or (op == ":-" and val == ""):
                return arg
            return val
        if op in (":?", "?"):
            if val is None or (op == ":?" and val == ""):
                problems.add(where, f"required variable {name} is unset: {arg}")
                return ""
            return val
        return val or ""

    if isinstance(value, str):
        if re.search(r"\$[A-Za-z_]", value):
            problems.add(where, f"bare $VAR in {value!r}: write ${{VAR}} (or $$ for a literal $)")
        return pattern.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v, env, where, problems) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{where}.{k}", problems) for k, v in value.items()}
    return value


def load(path, env):
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    problems = Problems()
    doc = interpolate(raw, env, "compose", problems)
    return doc, problems


def env_of(svc):
    e = svc.get("environment") or {}
    if isinstance(e, list):
        e = dict(x.split("=", 1) if "=" in x else (x, "") for x in e)
    return {k: "" if v is None else str(v) for k, v in e.items()}


def is_usagestream(svc):
    return "build" in svc or str(svc.get("image", "")).startswith("${USAGESTREAM_IMAGE") or \
        str(svc.get("image", "")).startswith("usagestream")


def subcommand(cmd):
    path = []
    for a in cmd:
        if a.startswith("-"):
            break
        path.append(a)
    return path


def help_text(binary, path):
    r = subprocess.run([binary, *path, "--help"], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def check_static(compose_path, dockerfile, binary, env):
    doc, problems = load(compose_path, env)
    # Secrets must be required, never defaulted.
    text = open(compose_path, encoding="utf-8").read()
    for s in SECRETS:
        if "${" + s not in text:
            continue
        _, p = load(compose_path, {k: v for k, v in env.items() if k != s})
        if not any(s in x for x in p):
            problems.add("compose", f"{s} unset does not fail interpolation: secrets must be ${{{s}:?...}}")
    services = doc.get("services") or {}
    volumes = set((doc.get("volumes") or {}).keys())
    for name, prefix in INFRA_IMAGES.items():
        img = (services.get(name) or {}).get("image", "")
        if not img.startswith(prefix):
            problems.add(f"services.{name}", f"image {img!r}, want {prefix}<version>")
    for name, svc in services.items():
        where = f"services.{name}"
        img = str(svc.get("image", ""))
        if img and not is_usagestream(svc) and (":" not in img or img.endswith(":latest")):
            problems.add(where, f"image {img!r} is not pinned to a version")
        for port in svc.get("ports") or []:
            if not str(port).startswith("127.0.0.1:"):
                problems.add(where, f"port {port!r} is published on every interface: bind 127.0.0.1")
        deps = svc.get("depends_on") or {}
        for d in deps:
            if d not in services:
                problems.add(where, f"depends_on {d!r}: no such service")
        for v in svc.get("volumes") or []:
            src = str(v).split(":", 1)[0]
            if not src.startswith((".", "/")) and src not in volumes:
                problems.add(where, f"volume {src!r} is not declared under volumes:")
            if src.startswith("./") and not os.path.exists(os.path.join(os.path.dirname(compose_path), src)):
                problems.add(where, f"bind mount {src!r} does not exist next to the compose file")
    # The images are the versions the test lane runs (scripts/realkafka).
    root = os.path.dirname(os.path.abspath(dockerfile))
    pom = open(os.path.join(root, "scripts", "realkafka", "pom.xml"), encoding="utf-8").read()
    kafka = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
    apicurio = re.search(r"APICURIO_VERSION:-([0-9.]+)", open(os.path.join(root, "scripts", "realkafka.sh"), encoding="utf-8").read()).group(1)
    for name, want in (("kafka", f"apache/kafka:{kafka}"), ("registry", f"apicurio/apicurio-registry:{apicurio}")):
        if (services.get(name) or {}).get("image") != want:
            problems.add(f"services.{name}", f"image {(services.get(name) or {}).get('image')!r}, but the test lane runs {want}")
    us = {n: s for n, s in services.items() if is_usagestream(s)}
    if not us:
        problems.add("compose", "no usagestream service")
    commands = set()
    for name, svc in us.items():
        where = f"services.{name}"
        build = svc.get("build") or {}
        df = os.path.normpath(os.path.join(os.path.dirname(compose_path), build.get("context", "."), build.get("dockerfile", "Dockerfile")))
        if os.path.abspath(df) != os.path.abspath(dockerfile):
            problems.add(where, f"builds {df}, not {dockerfile}")
        cmd = [str(c) for c in svc.get("command") or []]
        path = subcommand(cmd)
        commands.add(" ".join(path))
        code, text = help_text(binary, path)
        if code != 0 or not path:
            problems.add(where, f"`usagestream {' '.join(path)}` is not a command of this binary: {text.strip().splitlines()[-1] if text.strip() else code}")
            continue
        for a in cmd[len(path):]:
            if a.startswith("-"):
                flag = a.split("=", 1)[0]
                if not re.search(re.escape(flag) + r"(?![\w-])", text):
                    problems.add(where, f"`usagestream {' '.join(path)}` has no flag {flag}")
        e = env_of(svc)
        for k in e:
            if k.startswith("USAGESTREAM_") and f"(${k})" not in text:
                problems.add(where, f"{k} is not read by `usagestream {' '.join(path)}` (not in its --help)")
        if "--http-addr" in text:
            addr = e.get("USAGESTREAM_HTTP_ADDR", "")
            if not addr.startswith("0.0.0.0:"):
                problems.add(where, f"USAGESTREAM_HTTP_ADDR is {addr!r}: in a container it must be 0.0.0.0:PORT, set explicitly")
            if "($USAGESTREAM_API_TOKEN)" in text and not e.get("USAGESTREAM_API_TOKEN"):
                problems.add(where, "the query API listens on 0.0.0.0 without USAGESTREAM_API_TOKEN")
    check_dockerfile(dockerfile, problems)
    return doc, problems, commands


def check_dockerfile(path, problems):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    if len(froms) < 2:
        problems.add("Dockerfile", "not a multi-stage build (want a Go build stage and a small runtime stage)")
    gomod = open(os.path.join(os.path.dirname(os.path.abspath(path)), "go.mod"), encoding="utf-8").read()
    want = re.search(r"^go (\S+)", gomod, re.M).group(1)
    m = re.search(r"golang:([0-9.]+)", froms[0] if froms else "")
    if not m or not want.startswith(m.group(1)) and not m.group(1).startswith(want):
        problems.add("Dockerfile", f"build stage {froms[0] if froms else '-'}: want golang:{want} (go.mod)")
    if not any("CGO_ENABLED=0" in l and "go build" in l and "./cmd/usagestream" in l for l in lines):
        problems.add("Dockerfile", "no `CGO_ENABLED=0 go build ... ./cmd/usagestream` step")
    final = lines[lines.index(froms[-1]):] if froms else []
    if not any(l.upper().startswith("USER ") and not re.match(r"USER\s+(root|0)\b", l, re.I) for l in final):
        problems.add("Dockerfile", "the runtime stage does not switch to a non-root USER")
    if not any(l.upper().startswith("ENTRYPOINT") and "usagestream" in l for l in final):
        problems.add("Dockerfile", "the runtime stage's ENTRYPOINT is not usagestream")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def order(us):
    done, out = set(), []
    while len(out) < len(us):
        progressed = False
        for n, s in us.items():
            if n in done:
                continue
            if all(d in done or d not in us for d in (s.get("depends_on") or {})):
                out.append(n)
                done.add(n)
                progressed = True
        if not progressed:
            raise SystemExit(f"check_compose: depends_on cycle among {sorted(set(us) - done)}")
    return out


def smoke(doc, binary, args):
    services = doc["services"]
    us = {n: s for n, s in services.items() if is_usagestream(s)}
    if shutil.which("psql") is None:
        raise SystemExit("check_compose: --smoke needs psql (Debian's postgresql-client) to check the sink's rows")
    work = tempfile.mkdtemp(prefix="usagestream-compose-")
    run_id = uuid.uuid4().hex[:8]
    prefix = f"compose{run_id}."
    procs, failures, drop = {}, [], None
    # The sink writes into a database of its own, dropped afterwards.
    admin_url, db = args.postgres_url, f"compose_{run_id}"
    psql(admin_url, f"CREATE DATABASE {db}")
    pg_url = urllib.parse.urlunsplit(urllib.parse.urlsplit(admin_url)._replace(path="/" + db))
    registry, apicurio = args.registry, None
    try:
        if args.apicurio_jar:
            apicurio = Apicurio(args.apicurio_jar, env_of(services["registry"]), admin_url, f"apicurio_{run_id}", work)
            registry = apicurio.start()
        for name in order(us):
            svc = us[name]
            e = env_of(svc)
            mapping = {}
            for v in svc.get("volumes") or []:
                target = str(v).split(":")[1]
                mapping[target] = os.path.join(work, name, target.strip("/").replace("/", "_"))
                os.makedirs(mapping[target], exist_ok=True)

            def local(s):
                for target, dst in sorted(mapping.items(), key=lambda x: -len(x[0])):
                    if s == target or s.startswith(target + "/"):
                        return dst + s[len(target):]
                return s

            cmd = [local(str(c)) for c in svc.get("command") or []]
            e = {k: local(v) for k, v in e.items()}
            e.update(USAGESTREAM_BROKERS=args.brokers, USAGESTREAM_REGISTRY=registry, USAGESTREAM_TOPIC_PREFIX=prefix)
            if "USAGESTREAM_POSTGRES_URL" in e:
                e["USAGESTREAM_POSTGRES_URL"] = pg_url
            http = None
            if "USAGESTREAM_HTTP_ADDR" in e:
                http = f"127.0.0.1:{free_port()}"
                e["USAGESTREAM_HTTP_ADDR"] = http
                if "USAGESTREAM_API_ADVERTISE" in e:
                    e["USAGESTREAM_API_ADVERTISE"] = "http://" + http
            if "USAGESTREAM_INGEST_METRICS_ADDR" in e:
                e["USAGESTREAM_INGEST_METRICS_ADDR"] = f"127.0.0.1:{free_port()}"
            if cmd[:2] == ["ingest", "--watch"]:
                drop = cmd[2]
            log = open(os.path.join(work, name + ".log"), "w")
            base = {k: v for k, v in os.environ.items() if not k.startswith("USAGESTREAM_")}
            procs[name] = (subprocess.Popen([binary, *cmd], env={**base, **e}, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=os.path.join(work, name) if os.path.isdir(os.path.join(work, name)) else work), log)
            t0 = time.monotonic()
            ok = ready(f"http://{http}/readyz", 90) if http else (time.sleep(3) or True)
            if procs[name][0].poll() is not None or not ok:
                failures.append(f"{name}: `usagestream {' '.join(cmd)}` did not become ready (see below)")
                break
            print(f"   compose service {name}: `usagestream {' '.join(svc.get('command'))}` ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        if not failures:
            if drop is None:
                failures.append("no `ingest --watch DIR` service")
            else:
                subprocess.run([binary, "gen", "-o", os.path.join(work, "gen"), "--service-points", "20", "--months", "3",
                                "--seed", "3", "--now", "20250315"], check=True, capture_output=True)
                files = [f for f in os.listdir(os.path.join(work, "gen")) if f.endswith(".gz")]
                for f in files:
                    # Written under a temporary name and renamed: a complete file appears at once.
                    shutil.copy(os.path.join(work, "gen", f), os.path.join(drop, f + ".part"))
                    os.rename(os.path.join(drop, f + ".part"), os.path.join(drop, f))
                deadline = time.monotonic() + 90
                done = os.path.join(drop, "done")
                while time.monotonic() < deadline and not (os.path.isdir(done) and set(files) <= set(os.listdir(done))):
                    time.sleep(0.5)
                if not (os.path.isdir(done) and set(files) <= set(os.listdir(done))):
                    failures.append(f"ingest: {files} not moved to done/ within 90 s (failed/: {os.listdir(os.path.join(drop, 'failed')) if os.path.isdir(os.path.join(drop, 'failed')) else []})")
                else:
                    print(f"   compose service ingest: {len(files)} dropped file(s) ingested and moved to done/", file=sys.stderr)
                    if any("USAGESTREAM_POSTGRES_URL" in env_of(s) for s in us.values()):
                        # Through the processors and the sink into PostgreSQL.
                        deadline, n = time.monotonic() + 90, 0
                        while time.monotonic() < deadline and n == 0:
                            time.sleep(1)
                            n = int(psql(pg_url, "SELECT count(*) FROM eligibility_current", check=False) or 0)
                        if n == 0:
                            failures.append("sink: no row in eligibility_current within 90 s of the file's ingest")
                        else:
                            print(f"   compose service sink: {n} rows in PostgreSQL's eligibility_current", file=sys.stderr)
            time.sleep(2)
            for name, (p, _) in procs.items():
                if p.poll() is not None:
                    failures.append(f"{name}: exited with status {p.returncode} while the others ran")
            if apicurio and not failures:
                # The registry's storage settings keep the schemas across a restart.
                before = apicurio.subjects(prefix)
                apicurio.stop()
                apicurio.start()
                after = apicurio.subjects(prefix)
                if not before or before != after:
                    failures.append(f"registry: subjects {before} before a restart, {after} after: the compose's storage settings do not persist them")
                else:
                    print(f"   compose service registry: Apicurio on PostgreSQL (the compose's APICURIO_* settings) kept {len(after)} subjects across a restart", file=sys.stderr)
    finally:
        for name, (p, log) in reversed(list(procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=45)
                    if p.returncode != 0 and not failures:
                        failures.append(f"{name}: exit status {p.returncode} after SIGTERM, want 0")
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    failures.append(f"{name}: still running 45 s after SIGTERM")
            log.close()
        if failures:
            for name in procs:
                with open(os.path.join(work, name + ".log")) as f:
                    tail = f.read().splitlines()[-15:]
                print(f"---- {name} log (last lines)\n" + "\n".join(tail), file=sys.stderr)
        if apicurio:
            apicurio.stop()
            if failures:
                print("---- registry log (last lines)\n" + apicurio.tail(), file=sys.stderr)
            psql(admin_url, f"DROP DATABASE IF EXISTS {apicurio.db}", check=False)
        shutil.rmtree(work, ignore_errors=True)
        psql(admin_url, f"DROP DATABASE IF EXISTS {db}", check=False)
    return failures


class Apicurio:
    """The registry service as compose configures it (its APICURIO_*
    environment), run from the jar the test lane fetched, with its JDBC URL
    pointed at a fresh database of the test PostgreSQL."""

    def __init__(self, jar, env, admin_url, db, work):
        self.jar, self.db, self.proc = jar, db, None
        jdbc = env.get("APICURIO_DATASOURCE_URL", "")
        if env.get("APICURIO_STORAGE_KIND") != "sql" or not jdbc.startswith("jdbc:postgresql://"):
            raise SystemExit(f"check_compose: the registry service does not store in PostgreSQL ({env})")
        psql(admin_url, f"CREATE DATABASE {db}")
        u = urllib.parse.urlsplit(admin_url)
        self.env = {**env, "APICURIO_DATASOURCE_URL": f"jdbc:postgresql://{u.hostname}:{u.port or 5432}/{db}",
                    "APICURIO_DATASOURCE_USERNAME": urllib.parse.unquote(u.username or "postgres"),
                    "APICURIO_DATASOURCE_PASSWORD": urllib.parse.unquote(u.password or "")}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(work, "registry.log")

    def start(self):
        log = open(self.log, "a")
        self.proc = subprocess.Popen(["java", "-Xmx384m", "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={self.port}",
                                      "-jar", os.path.abspath(self.jar)], cwd=os.path.dirname(os.path.abspath(self.jar)),
                                     env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        t0 = time.monotonic()
        if not ready(self.url + "/health/ready", 120) or self.proc.poll() is not None:
            raise SystemExit("check_compose: Apicurio with the compose's storage settings did not start:\n" + self.tail())
        print(f"   compose service registry: Apicurio on PostgreSQL ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        return self.url + "/apis/ccompat/v7"

    def subjects(self, prefix):
        import json
        with urllib.request.urlopen(self.url + "/apis/ccompat/v7/subjects", timeout=10) as r:
            return sorted(x for x in json.load(r) if x.startswith(prefix))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self):
        with open(self.log, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-20:])


def psql(url, sql, check=True):
    """One statement through psql; the first value of the answer."""
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        if check:
            raise SystemExit(f"check_compose: psql {sql!r}: {r.stderr.strip()}")
        return None
    return r.stdout.strip()


def dockerignored(path, patterns):
    """Whether .dockerignore patterns exclude path (a file or any folder it is in)."""
    import fnmatch
    parts = path.split("/")
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        pp = pat.split("/")
        hit = False
        for n in range(1, len(parts) + 1):
            pre = parts[:n]
            if pp[0] == "**":
                rest = pp[1:]
                hit = len(pre) >= len(rest) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(pre[-len(rest):], rest))
            else:
                hit = len(pre) == len(pp) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(pre, pp))
            if hit:
                break
        if hit:
            excluded = not neg
    return excluded


def copy_context(dockerfile, out):
    """Copies the Docker build context (the Dockerfile's folder, as
    .dockerignore filters it) to out, so the image's build step can be run
    on it without Docker."""
    root = os.path.dirname(os.path.abspath(dockerfile))
    patterns = []
    ign = os.path.join(root, ".dockerignore")
    if os.path.exists(ign):
        patterns = [l.strip() for l in open(ign, encoding="utf-8") if l.strip() and not l.startswith("#")]
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                           capture_output=True, check=True).stdout.decode().split("\0")
    n = 0
    for f in files:
        if not f or dockerignored(f, patterns) or not os.path.isfile(os.path.join(root, f)):
            continue
        dst = os.path.join(out, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(root, f), dst)
        n += 1
    print(f"   docker build context: {n} files", file=sys.stderr)


# Each mistake the static checks exist for, made in a copy of the file: every
# one must be reported (so the checks cannot pass vacuously).
MUTATIONS = [
    ('"127.0.0.1:8088:8088"', '"8088:8088"', "published on every interface"),
    ("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in compose/.env}", "${POSTGRES_PASSWORD:-secret}", "POSTGRES_PASSWORD unset does not fail"),
    ('"--poll", "5s"', '"--pol", "5s"', "has no flag --pol"),
    ("USAGESTREAM_HTTP_ADDR: 0.0.0.0:8090", "USAGESTREAM_HTTP_ADDR: 127.0.0.1:8090", "must be 0.0.0.0:PORT"),
    ("USAGESTREAM_UTILITY:", "USAGESTREAM_UTILTY:", "USAGESTREAM_UTILTY is not read by"),
    ('["sink", "postgres"]', '["sink", "postgress"]', "is not a command of this binary"),
    ("image: apache/kafka:", "image: apache/kafka:0.", "but the test lane runs"),
    ("      - kafka-data:/var/lib/kafka/data", "      - kafka-dat:/var/lib/kafka/data", "is not declared under volumes"),
]


def self_test(compose_path, dockerfile, binary, env):
    text = open(compose_path, encoding="utf-8").read()
    missed = []
    with tempfile.TemporaryDirectory() as d:
        for old, new, want in MUTATIONS:
            if old not in text:
                missed.append(f"mutation {old!r}: not in {compose_path} any more; update MUTATIONS")
                continue
            path = os.path.join(os.path.dirname(os.path.abspath(compose_path)), f".mutated-{os.getpid()}.yml")
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace(old, new))
                _, problems, _ = check_static(path, dockerfile, binary, env)
            finally:
                os.remove(path)
            if not any(want in p for p in problems):
                missed.append(f"{old!r} -> {new!r} was not reported as {want!r} (got {list(problems)})")
    return missed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary")
    p.add_argument("--copy-context", metavar="DIR", help="only copy the Docker build context to DIR")
    p.add_argument("--smoke", action="store_true", help="start every usagestream service against --brokers/--registry")
    p.add_argument("--brokers")
    p.add_argument("--registry")
    p.add_argument("--postgres-url")
    p.add_argument("--apicurio-jar", help="with --smoke: run the registry service from this jar, as compose configures it")
    p.add_argument("compose")
    p.add_argument("dockerfile")
    args = p.parse_args()
    if args.copy_context:
        copy_context(args.dockerfile, args.copy_context)
        return 0
    if not args.binary:
        p.error("--binary is required")
    # The variables an operator sets in compose/.env; their values do not matter here.
    env = {s: "check-" + s.lower() for s in SECRETS}
    missed = self_test(args.compose, args.dockerfile, args.binary, env)
    if missed:
        print("check_compose: the checks missed mistakes:\n  " + "\n  ".join(missed), file=sys.stderr)
        return 1
    doc, problems, commands = check_static(args.compose, args.dockerfile, args.binary, env)
    if problems:
        print(f"check_compose: {len(problems)} problems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"   compose: {len(doc['services'])} services; usagestream commands {sorted(commands)} and their flags and "
          f"environment variables exist; ports on 127.0.0.1; Dockerfile multi-stage, static, non-root "
          f"({len(MUTATIONS)} planted mistakes all caught)", file=sys.stderr)
    if args.smoke:
        if not (args.brokers and args.registry and args.postgres_url):
            print("check_compose: --smoke needs --brokers, --registry and --postgres-url", file=sys.stderr)
            return 2
        failures = smoke(doc, args.binary, args)
        if failures:
            print("check_compose: the services as compose runs them:\n  " + "\n  ".join(failures), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
