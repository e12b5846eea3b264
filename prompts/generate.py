#!/usr/bin/env python3
"""Generates prompts/<lang>/<name>.wav (8 kHz mono, 16-bit) from
prompts/manifest.toml with espeak-ng and sox (Debian packages espeak-ng, sox).

Usage: python3 prompts/generate.py [--only LANG] [--force]

Existing files are kept unless --force is given; files listed under
[recorded] are never touched. The number building blocks follow the same
lists as crates/nida-ivr/src/say.rs (a test checks every block exists).
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))


def number_blocks(lang):
    if lang in ("hi", "ur"):
        nums = list(range(100))
        extra = ["n_100", "n_1000", "n_lakh", "n_crore"]
    elif lang == "ar":
        nums = list(range(13)) + list(range(20, 100, 10)) + list(range(100, 1000, 100))
        extra = ["n_1000", "n_2000", "n_thousands", "n_million", "n_2million", "n_millions", "n_and"]
    elif lang == "fa":
        nums = list(range(20)) + list(range(20, 100, 10)) + list(range(100, 1000, 100))
        extra = ["n_1000", "n_million", "n_and"]
    elif lang == "fr":
        nums = list(range(17)) + [20, 30, 40, 50, 60, 80, 100, 1000]
        extra = ["n_80s", "n_100s", "n_et", "n_million", "n_millions", "n_premier"]
    else:
        nums = list(range(20)) + list(range(20, 100, 10)) + [100, 1000]
        extra = ["n_million"]
    return sorted(set([f"n_{n}" for n in nums] + extra))


def blocks(lang, words):
    """(name, text, number?) for every building block of a language."""
    out = []
    for name in number_blocks(lang):
        text = words.get(name)
        if text is None:
            text = name[2:]  # the numeral; the voice says it in its language
        out.append((name, text, True))
    for d in range(10):
        out.append((f"digit_{d}", str(d), True))
    out.append(("digit_star", words["digit_star"], True))
    out.append(("digit_hash", words["digit_hash"], True))
    for i, m in enumerate(words["months"], start=1):
        out.append((f"month_{i}", m, False))
    for k in ("time_hours", "time_minutes", "money_major", "money_and", "money_minor"):
        out.append((k, words[k], False))
    return out


def speak(voice, text, wav):
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", raw.name, text], check=True)
        subprocess.run(["sox", raw.name, "-r", "8000", "-c", "1", "-b", "16", wav], check=True)


def music_on_hold(path):
    """An 8-second plucked melody that loops cleanly (moh.wav)."""
    notes = "C4 E4 G4 E4 F4 A4 C5 A4 G4 B4 D5 B4 C5 G4 E4 C4".split()
    with tempfile.TemporaryDirectory() as d:
        parts = []
        for i, n in enumerate(notes):
            p = os.path.join(d, f"{i:02}.wav")
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", p,
                            "synth", "0.5", "pluck", n, "fade", "0.01", "0.5", "0.2",
                            "vol", "0.5"], check=True)
            parts.append(p)
        subprocess.run(["sox", *parts, "-r", "8000", "-c", "1", "-b", "16", path], check=True)


def beep(path):
    """The voicemail tone: 1 kHz for 400 ms."""
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", path,
                    "synth", "0.4", "sine", "1000", "fade", "0.01", "0.4", "0.01",
                    "vol", "0.5"], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    with open(os.path.join(HERE, "manifest.toml"), "rb") as f:
        m = tomllib.load(f)
    jobs = []
    for lang, voice in m["voices"].items():
        if args.only and lang != args.only:
            continue
        recorded = set(m.get("recorded", {}).get(lang, []))
        folder = os.path.join(HERE, lang)
        os.makedirs(folder, exist_ok=True)
        items = [(n, t, voice) for n, t in m["prompts"][lang].items()]
        num_voice = m.get("number_voices", {}).get(lang, voice)
        for name, text, is_number in blocks(lang, m["words"][lang]):
            items.append((name, text, num_voice if is_number else voice))
        for name, text, v in items:
            path = os.path.join(folder, name + ".wav")
            if name in recorded or (os.path.exists(path) and not args.force):
                continue
            jobs.append((v, text, path))
        for name, spec in m.get("multilingual", {}).items():
            path = os.path.join(folder, name + ".wav")
            if name in recorded or (os.path.exists(path) and not args.force):
                continue
            jobs.append(("multi", spec["parts"], path))

    def run(job):
        v, text, path = job
        if v == "multi":
            with tempfile.TemporaryDirectory() as d:
                parts = []
                for i, (lang, t) in enumerate(text):
                    p = os.path.join(d, f"{i}.wav")
                    speak(m["voices"][lang], t, p)
                    parts.append(p)
                subprocess.run(["sox", *parts, path], check=True)
        else:
            speak(v, text, path)
        return path

    for lang in m["voices"]:
        path = os.path.join(HERE, lang, "moh.wav")
        if not os.path.exists(path) or args.force:
            music_on_hold(path)
        path = os.path.join(HERE, lang, "beep.wav")
        if not os.path.exists(path) or args.force:
            beep(path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for n, path in enumerate(ex.map(run, jobs), start=1):
            pass
    print(f"generated {len(jobs)} prompts", file=sys.stderr)


if __name__ == "__main__":
    main()
