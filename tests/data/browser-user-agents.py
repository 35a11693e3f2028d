#!/usr/bin/env python3
"""Rebuilds browser-user-agents.txt (see LICENSES.md for the sources and the filter).

usage: browser-user-agents.py WOOTHEE_CRATE_DIR TOP_USER_AGENTS_PACKAGE_DIR > browser-user-agents.txt
  WOOTHEE_CRATE_DIR: ~/.cargo/registry/src/*/woothee-0.13.0
  TOP_USER_AGENTS_PACKAGE_DIR: the `package` folder of `npm pack top-user-agents`
Needs PyYAML. Prints what it kept per browser shape on stderr.
"""
import collections
import glob
import json
import re
import sys

woothee, top = sys.argv[1], sys.argv[2]
uap = woothee + "/benches/uap-core/"
agents = []
for name in ["test_ua.yaml", "test_device.yaml", "test_os.yaml"]:
    import yaml

    for case in yaml.safe_load(open(uap + "tests/" + name))["test_cases"]:
        family = case.get("family") or ""
        if family == "Spider" or re.search(r"(?i)bot|spider|crawl|headless", family):
            continue
        agents.append(case["user_agent_string"])
agents += open(uap + "test_resources/firefox_user_agent_strings.txt").read().splitlines()
for name in ["index.json", "desktop.json", "mobile.json"]:
    agents += json.load(open(top + "/src/" + name))
for path in sorted(glob.glob(woothee + "/tests/pc_*.rs") + glob.glob(woothee + "/tests/smartphone_*.rs")):
    agents += re.findall(r'parser\.parse\(r#"(.*?)"#\)', open(path).read())

WK = r"AppleWebKit/[\d.]+(?:\+)? \(KHTML, like Gecko\)"
DESKTOP = (r"(?:Windows NT \d+\.\d(?:; (?:Win64; x64|WOW64))?|Macintosh; Intel Mac OS X \d+[_.]\d+(?:[_.]\d+)?"
           r"|X11; (?:Ubuntu; )?Linux (?:x86_64|i686)|X11; CrOS \w+ [\d.]+)")
ANDROID = (r"Linux; (?:U; )?Android \d+(?:\.\d+)*(?:; [a-z]{2}[-_][a-zA-Z]{2})?(?:; [^;()]+?)?"
           r"(?: Build/[^;()]+)?(?:; wv)?")
IOS = (r"(?:iPhone|iPad|iPod(?: touch)?); (?:U; )?CPU (?:iPhone )?OS \d+(?:_\d+)* like Mac OS X"
       r"(?:; [a-z]{2}[-_][a-zA-Z]{2})?")
CHROME = r"Chrome/\d+\.\d+\.\d+\.\d+"
SHAPES = {
    "chrome-desktop": rf"Mozilla/5\.0 \({DESKTOP}\) {WK} {CHROME} Safari/[\d.]+",
    "edge-desktop": rf"Mozilla/5\.0 \({DESKTOP}\) {WK} {CHROME} Safari/[\d.]+ Edge?/[\d.]+",
    "opera-desktop": rf"Mozilla/5\.0 \({DESKTOP}\) {WK} {CHROME} Safari/[\d.]+ OPR/[\d.]+",
    "chrome-android": rf"Mozilla/5\.0 \({ANDROID}\) {WK} {CHROME} (?:Mobile )?Safari/[\d.]+",
    "edge-android": rf"Mozilla/5\.0 \({ANDROID}\) {WK} {CHROME} (?:Mobile )?Safari/[\d.]+ EdgA/[\d.]+",
    "opera-android": rf"Mozilla/5\.0 \({ANDROID}\) {WK} {CHROME} (?:Mobile )?Safari/[\d.]+ OPR/[\d.]+",
    "samsung": rf"Mozilla/5\.0 \({ANDROID}\) {WK} SamsungBrowser/[\d.]+ {CHROME} (?:Mobile )?Safari/[\d.]+",
    "firefox": (r"Mozilla/5\.0 \((?:Windows NT \d+\.\d(?:; (?:Win64; x64|WOW64))?|Macintosh; Intel Mac OS X \d+\.\d+"
                r"|X11; (?:Ubuntu; )?Linux (?:x86_64|i686)|Android \d+(?:\.\d+)*; (?:Mobile|Tablet)); rv:[\d.]+\) "
                r"Gecko/(?:20100101|[\d.]+) Firefox/[\d.]+"),
    "safari-mac": rf"Mozilla/5\.0 \(Macintosh; Intel Mac OS X \d+_\d+(?:_\d+)?\) {WK} Version/[\d.]+ Safari/[\d.]+",
    "safari-ios": rf"Mozilla/5\.0 \({IOS}\) {WK} Version/[\d.]+ Mobile/\w+ Safari/[\d.]+",
    "chrome-ios": rf"Mozilla/5\.0 \({IOS}\) {WK} CriOS/[\d.]+ Mobile/\w+ Safari/[\d.]+",
    "firefox-ios": rf"Mozilla/5\.0 \({IOS}\) {WK} FxiOS/[\d.]+ Mobile/\w+ Safari/[\d.]+",
    "edge-ios": rf"Mozilla/5\.0 \({IOS}\) {WK} Version/[\d.]+ EdgiOS/[\d.]+ Mobile/\w+ Safari/[\d.]+",
    "ie11": r"Mozilla/5\.0 \(Windows NT \d+\.\d; (?:WOW64; |Win64; x64; )?Trident/7\.0;(?: [^;()]+;)* rv:11\.0\) like Gecko",
    "ie-old": r"Mozilla/4\.0 \(compatible; MSIE (?:[6-9]|10)\.0; Windows NT \d+\.\d(?:; [^;()]+)*\)",
}
SHAPES = {name: re.compile("^" + shape + "$") for name, shape in SHAPES.items()}

seen, kept = set(), collections.Counter()
for agent in agents:
    agent = agent.strip()
    if agent in seen:
        continue
    for name, shape in SHAPES.items():
        if shape.match(agent):
            seen.add(agent)
            kept[name] += 1
            print(agent)
            break
for name, count in sorted(kept.items()):
    print(count, name, file=sys.stderr)
print(sum(kept.values()), "in all", file=sys.stderr)
