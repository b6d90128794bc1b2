"""Build the training corpus: CPython 3.11 stdlib + its test suite, the Python docs (reST) and
the Node.js API docs. All PSF- or MIT-licensed text that Debian packages put on this machine.

Third-party packages (site-packages / dist-packages) are excluded on purpose: they are the
held-out *domain* for evaluation. Within the corpus, the held-out split is chosen per file by a
hash of its relative path, so it is deterministic and files never straddle the split.

Output: data/corpus/{train,val}.txt -- documents separated by the DOC_SEP line, plus stats.json.
"""
import argparse, hashlib, json, os, sys, time

from training.progress import bar, elapsed, summary

DOC_SEP = "\n\x1e\n"  # ASCII record separator: never occurs in the sources; becomes a BOS token
SOURCES = [
    # (name, root, suffixes)
    ("cpython-stdlib", "/usr/lib/python3.11", (".py",)),
    ("python-docs", "/usr/share/doc/python3.11/html/_sources", (".txt", ".rst")),
    ("nodejs-api-docs", "/usr/share/doc/nodejs/api", (".md",)),
]
EXCLUDE_PARTS = {"site-packages", "dist-packages", "__pycache__"}
MAX_FILE_BYTES = 400_000  # giant generated tables (e.g. unicode data) teach nothing


def iter_files(root, suffixes):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_PARTS)
        for f in sorted(filenames):
            if f.endswith(suffixes):
                yield os.path.join(dirpath, f)


def is_heldout(rel_path, val_percent):
    h = int(hashlib.sha256(rel_path.encode()).hexdigest()[:8], 16)
    return h % 1000 < val_percent * 10


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/corpus")
    ap.add_argument("--val-percent", type=float, default=2.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    stats = {"sources": {}, "train_bytes": 0, "val_bytes": 0, "files": 0}
    t0 = time.time()
    with open(os.path.join(args.out, "train.txt"), "w", encoding="utf-8") as tr, \
         open(os.path.join(args.out, "val.txt"), "w", encoding="utf-8") as va:
        for name, root, suffixes in SOURCES:
            if not os.path.isdir(root):
                sys.exit(f"missing {root}: install the Debian packages listed in the README")
            n = 0
            paths = list(iter_files(root, suffixes))
            for path in bar(paths, desc=name, unit="file"):
                try:
                    with open(path, encoding="utf-8") as f:
                        text = f.read()
                except (UnicodeDecodeError, OSError):
                    continue
                if not text.strip() or len(text.encode()) > MAX_FILE_BYTES or "\x1e" in text:
                    continue
                text = text.replace("\r\n", "\n")
                rel = name + "/" + os.path.relpath(path, root)
                out = va if is_heldout(rel, args.val_percent) else tr
                out.write(text + DOC_SEP)
                stats["val_bytes" if out is va else "train_bytes"] += len(text.encode()) + 3
                n += 1
            stats["sources"][name] = n
            stats["files"] += n
            print(f"{name}: {n} of {len(paths)} files kept", flush=True)
    with open(os.path.join(args.out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=2)
    print(json.dumps(stats))
    summary(f"corpus: {stats['files']} files, train {stats['train_bytes'] / 1e6:.1f} MB, val {stats['val_bytes'] / 1e6:.1f} MB "
            f"in {args.out} ({elapsed(t0)})")


if __name__ == "__main__":
    main()
