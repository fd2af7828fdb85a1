#!/usr/bin/env python3
"""Check the LuCI view against the UCI schema in both directions.

  check_luci.py [VIEW.js] [--binary EDGEMQ]

1. Every option the view edits must exist in UCI.md for its section type, and every UCI.md
   option must have a field in the view. The [limits] keys of section 'main' are listed in
   UCI.md only in a comment, so they come from `struct Limits` in src/config/model.rs.
2. The same both ways against the loader's own table (SCHEMA in src/config/uci.rs), when present.
3. With --binary: a UCI file setting every option the view edits (sample values, referenced
   files created in a temp dir) must pass `edgemq check` — the loader accepts what LuCI writes.
Exit 1 with one line per problem.
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "openwrt-package/luci-app-edgemq/htdocs/luci-static/resources/view/edgemq/config.js"
MODEL = ROOT / "src/config/model.rs"
LOADER = ROOT / "src/config/uci.rs"

# A valid value for every option the view can write ({d} = temp dir with the referenced files).
SAMPLES = {
    "edgemq": {"enabled": "1", "data_dir": "{d}/data", "user": "nobody", "log_level": "info",
               "worker_threads": "1", "sys_interval": "10s", "max_connections": "64",
               "max_packet_size": "256KiB", "connect_timeout": "10s", "max_inflight": "16",
               "max_queued_messages": "100", "queue_full": "drop-oldest", "max_keepalive": "600",
               "session_expiry": "1d", "max_topic_alias": "8", "receive_maximum": "32",
               "password_file": "{d}/passwd", "acl_file": "{d}/acl"},
    "user": {"enabled": "1", "username": "sensor1", "password": "secret",
             "password_hash": None},  # password and password_hash exclude each other: own section
    "listener": {"enabled": "1", "bind": "127.0.0.1:18830", "allow_anonymous": "0",
                 "tls_cert": "{d}/server.crt", "tls_key": "{d}/server.key",
                 "tls_client_ca": "{d}/ca.crt", "tls_identity_as_username": "1",
                 "password_file": "{d}/passwd", "acl_file": "{d}/acl"},
    "bridge": {"enabled": "1", "name": "central", "address": "mqtt.example.com:8883",
               "client_id": "GW-0001", "protocol": "mqtt5", "clean_session": "0",
               "keepalive": "60s", "username": "gw", "password": "secret",
               "password_file": None,  # password and password_file exclude each other
               "notifications": "1", "notification_topic": "gw/state", "try_private": "1",
               "message_id_property": "1", "inflight": "32", "reconnect_min": "1s",
               "reconnect_max": "60s", "failback_after": "5m", "tls": "1", "tls_ca": "{d}/ca.crt",
               "tls_cert": "{d}/client.crt", "tls_key": "{d}/client.key",
               "tls_server_name": "mqtt.example.com", "tls13_only": "1", "tls_alpn": "mqtt",
               "queue_max_bytes": "16MiB", "queue_max_age": "7d", "queue_overflow": "drop-newest",
               "queue_replay_rate": "100", "queue_durability": "outage"},
    "topic": {"enabled": "1", "bridge": "central", "pattern": "meters/#", "direction": "both",
              "qos": "1", "local_prefix": "site/", "remote_prefix": "gw/", "coalesce": "1"},
}
LIST_OPTIONS = {("bridge", "address"), ("bridge", "tls_alpn")}


def find_uci_md():
    for p in (ROOT / "UCI.md", ROOT / "docs/UCI.md", ROOT.parent / "UCI.md"):
        if p.exists():
            return p
    return None


def doc_options(text):
    """section type -> options, from the tables of docs/configuration.md (the user's reference):
    a heading naming `config TYPE` starts a section, "options of the ... section" continues it,
    and the second column of each table row is the UCI option."""
    schema, current = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            m = re.search(r"config (\w+)", line)
            if m:
                current = schema.setdefault(m.group(1), {"enabled"})
            elif "options of" not in line:
                current = None
            continue
        m = re.match(r"\|[^|]*\|\s*`(?:list )?(\w+)`", line)
        if current is not None and m:
            current.add(m.group(1))
    return schema


def schema_options(text):
    """section type -> set of options, from the `config TYPE` blocks of UCI.md."""
    schema, current = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*config\s+(\w+)", line)
        if m:
            current = schema.setdefault(m.group(1), {"enabled"})
            continue
        if current is None:
            continue
        # `option x` and `list x`, also in comments ("or: option password_hash ...")
        for m in re.finditer(r"\b(?:option|list)\s+(\w+)", line):
            current.add(m.group(1))
    return schema


def limits_fields(text):
    m = re.search(r"pub struct Limits \{(.*?)\n\}", text, re.S)
    if not m:
        sys.exit("check_luci: struct Limits not found in model.rs")
    return set(re.findall(r"pub (\w+):", m.group(1)))


def view_options(text):
    """section type -> set of options edited by the view."""
    view, current = {}, None
    sec = re.compile(r"m\.section\(form\.\w+,\s*'(\w+)'(?:,\s*'(\w+)')?")
    opt = re.compile(r"s\.(?:tab)?option\((?:'\w+',\s*)?form\.(\w+),\s*'(\w+)'")
    # helpers above render() (enabledFlag) are counted where they are called
    body = text[text.index("render: function"):]
    for line in body.splitlines():
        m = sec.search(line)
        if m:
            # NamedSection(name, type): the type is the second argument
            stype = m.group(2) if m.group(2) and "NamedSection" in line else m.group(1)
            if "NamedSection" in line:
                stype = {"main": "edgemq"}.get(m.group(1), m.group(1))
            current = view.setdefault(stype, set())
            continue
        if "enabledFlag(s)" in line and current is not None:
            current.add("enabled")
        for m in opt.finditer(line):
            if m.group(1) in ("DummyValue", "Button", "SectionValue"):
                continue
            if current is None:
                sys.exit(f"check_luci: option {m.group(2)} before any section")
            current.add(m.group(2))
    return view


def loader_options(text):
    """section type -> options, from the loader's SCHEMA table; None if there is none yet."""
    rows = re.findall(r'\(\s*"(\w+)",\s*"(\w+)",\s*"[\w.]*",\s*Kind::\w+,?\s*\)', text)
    if not rows:
        return None
    out = {}
    for stype, opt in rows:
        out.setdefault(stype, {"enabled"}).add(opt)
    return out


def compare(problems, reference, refname, view):
    for stype in sorted(set(reference) | set(view)):
        s, v = reference.get(stype, set()), view.get(stype, set())
        if stype not in reference:
            problems.append(f"view edits section type '{stype}' which is not in {refname}")
        if stype not in view:
            problems.append(f"{refname} section type '{stype}' has no LuCI section")
        for o in sorted(v - s):
            problems.append(f"{stype}: LuCI edits option '{o}' which is not in {refname}")
        for o in sorted(s - v):
            problems.append(f"{stype}: {refname} option '{o}' has no LuCI field")


def uci_line(stype, opt, value):
    kw = "list" if (stype, opt) in LIST_OPTIONS else "option"
    return f"\t{kw} {opt} '{value}'"


def make_files(d, binary):
    """The files a full config references, real enough for `edgemq check` to parse them: a CA,
    a server and a client certificate (openssl), a password file and a hash (edgemq passwd)."""
    for f in ("acl", "passwd"):
        Path(d, f).write_text("")
    Path(d, "bridge.pass").write_text("secret\n")
    subprocess.run([binary, "passwd", f"{d}/passwd", "hashed"], input="hashed-secret\n",
                   capture_output=True, text=True, check=True)
    hash_ = Path(d, "passwd").read_text().strip().split(":", 1)[1]
    Path(d, "acl").write_text("topic readwrite #\n")

    def ssl(*args):
        subprocess.run(["openssl", *args], capture_output=True, check=True, cwd=d)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test-ca", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.crt")
    # webpki accepts only X.509 v3: the extensions make `openssl x509 -req` write one
    Path(d, "v3.ext").write_text("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\n")
    for name in ("server", "client"):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout",
            f"{name}.key", "-out", f"{name}.csr")
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "v3.ext", "-out", f"{name}.crt")
    return hash_


def loader_accepts(binary, view, problems):
    """Write every option the view edits into one UCI file and run `edgemq check` on it."""
    with tempfile.TemporaryDirectory() as d:
        hash_ = make_files(d, binary)
        lines = []
        for stype in ("edgemq", "user", "listener", "bridge", "topic"):
            name = {"edgemq": " 'main'", "listener": " 'lan'", "bridge": " 'central'"}.get(stype, "")
            lines.append(f"config {stype}{name}")
            for opt in sorted(view.get(stype, ())):
                sample = SAMPLES.get(stype, {}).get(opt, "")
                if sample == "":
                    problems.append(f"{stype}: no sample value for '{opt}' in check_luci.py")
                elif sample is not None:
                    lines.append(uci_line(stype, opt, sample.format(d=d)))
            lines.append("")
        # the options that exclude another one, each in a section of its own
        lines += ["config user", "\toption username 'hashed2'",
                  f"\toption password_hash '{hash_}'", "",
                  "config bridge 'backup'", "\tlist address 'backup.example.com:1883'",
                  f"\toption password_file '{d}/bridge.pass'", "",
                  "config topic", "\toption bridge 'backup'", "\toption pattern 'x/#'", ""]
        conf = Path(d, "edgemq")
        conf.write_text("\n".join(lines))
        r = subprocess.run([binary, "check", "-c", str(conf)], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append(f"edgemq check rejects the options LuCI writes (exit {r.returncode}):")
            problems += ["    " + l for l in (r.stderr or r.stdout).strip().splitlines()]


def flag_defaults(text, problems):
    """A Flag whose default is on must write '0' when unchecked (rmempty = false): an absent
    option means the loader's default, so unchecking it would silently change nothing."""
    body = text[text.index("render: function"):]
    for m in re.finditer(r"form\.Flag,\s*'(\w+)'[^\n]*\n((?:\t+o\.[^\n]*\n|\t+//[^\n]*\n)*)", body):
        props = m.group(2)
        if "o.default = '1'" in props and "o.rmempty = false" not in props:
            problems.append(f"Flag '{m.group(1)}' defaults to on but lacks o.rmempty = false")
    if "enabledFlag" in body and "o.rmempty = false" not in text[:text.index("render: function")]:
        problems.append("enabledFlag() lacks o.rmempty = false")


def main():
    uci_md = find_uci_md()
    doc = ROOT / "docs/configuration.md"
    if uci_md is None and not doc.exists():
        sys.exit("check_luci: neither UCI.md nor docs/configuration.md found")
    args = sys.argv[1:]
    binary = None
    if "--binary" in args:
        i = args.index("--binary")
        binary = args[i + 1]
        del args[i:i + 2]
    js = Path(args[0]) if args else JS  # a different view, for the self-test
    view = view_options(js.read_text())
    assert view, "empty view: the parser found nothing"
    problems = []
    schema = {}
    if uci_md is not None:
        schema = schema_options(uci_md.read_text())
        schema.setdefault("edgemq", {"enabled"}).update(limits_fields(MODEL.read_text()))
        compare(problems, schema, "UCI.md", view)
    if doc.exists():
        documented = doc_options(doc.read_text())
        compare(problems, documented, "docs/configuration.md", view)
        schema = schema or documented
    assert schema and all(schema.values()), "empty schema: the parsers found nothing"
    flag_defaults(js.read_text(), problems)
    loader = loader_options(LOADER.read_text()) if LOADER.exists() else None
    if loader is not None:
        compare(problems, loader, "the UCI loader (src/config/uci.rs)", view)
    else:
        print("check_luci: no loader table in src/config/uci.rs yet; UCI.md only")
    if binary:
        loader_accepts(binary, view, problems)
    for p in problems:
        print(p)
    n = sum(len(x) for x in schema.values())
    print(f"check_luci: {len(schema)} section types, {n} schema options, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
