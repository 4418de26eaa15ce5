"""explore_run - run generated scenarios through mtasim run and judge them.

Contract: Runner(binary, plugins, timeout, workdir).run(texts) writes each
scenario text to its own file under workdir, runs them all with ONE
'mtasim run --json' process (each run is still isolated in its own child
there, docs/cli.md "Each run in its own process") and returns, per text,
the run object of the result JSON (docs/results.md). check(run) names the
failure a run shows - its exit code and a signature of the check that
failed, with the numbers taken out, so that the same bug found at another
time, address or seed counts as the same failure (the shrinker keeps a
candidate only when both still match).
"""

import itertools
import json
import os
import re
import subprocess
import threading

_counter = itertools.count()
_lock = threading.Lock()


def _norm(text, numbers=False):
    """A failure text without its virtual times (and numbers): the check's identity."""
    text = re.sub(r' at \d+:\d\d:\d\d\.\d+', '', text)
    text = re.sub(r'\b\d+:\d\d:\d\d\.\d+', 'T', text)
    return re.sub(r'\d+', 'N', text) if numbers else text


def check(run):
    """(exit_code, signature) of a run object; exit code 0 gives None."""
    code = run.get('exit_code', 0)
    if code == 0:
        return None
    verdict = run.get('verdict')
    if verdict == 'fail':
        failed = [e.get('text', '') for e in run.get('expectations', []) if not e.get('passed')]
        return code, 'expectation failed: ' + (failed[0] if failed else '?')
    if verdict == 'invariant':
        v = run.get('violations') or [run.get('error') or 'internal error']
        head = v[0]
        kind, sep, _ = head.partition(':')
        if sep and re.match(r'^[a-z]+$', kind):
            return code, 'invariant %s' % kind
        return code, 'invariant: ' + _norm(head, numbers=True)[:100]
    if verdict == 'plugin':
        return code, _norm(run.get('error') or 'plugin misbehaved')[:160]
    return code, '%s: %s' % (verdict, _norm(run.get('error') or '')[:160])


class Runner:
    def __init__(self, binary, plugins, timeout, workdir):
        self.binary = binary
        self.plugins = list(plugins)
        self.timeout = timeout
        self.workdir = workdir

    def command(self, files, json_path):
        cmd = [self.binary, 'run', '-q', '--json', json_path, '--timeout', str(self.timeout)]
        for p in self.plugins:
            cmd += ['--plugin', p]
        return cmd + list(files)

    def run(self, texts):
        """The run object of each text, in order."""
        if not texts:
            return []
        with _lock:
            batch = next(_counter)
        files = []
        for k, text in enumerate(texts):
            path = os.path.join(self.workdir, 'b%d-%d.scn' % (batch, k))
            with open(path, 'w', encoding='utf-8', errors='surrogateescape') as f:
                f.write(text)
            files.append(path)
        json_path = os.path.join(self.workdir, 'b%d.json' % batch)
        proc = subprocess.run(self.command(files, json_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        try:
            with open(json_path, encoding='utf-8') as f:
                runs = json.load(f)['runs']
        except (OSError, ValueError, KeyError) as e:
            raise RuntimeError('mtasim run gave no results (exit %d): %s %s'
                               % (proc.returncode, e, proc.stderr.decode(errors='replace')[-500:]))
        if len(runs) != len(files):
            raise RuntimeError('mtasim run reported %d runs for %d files' % (len(runs), len(files)))
        for path in files:
            os.unlink(path)
        os.unlink(json_path)
        return runs

    def run_file(self, path):
        """Run one scenario file where it is (the shrunk one, to prove it)."""
        with _lock:
            batch = next(_counter)
        json_path = os.path.join(self.workdir, 'v%d.json' % batch)
        proc = subprocess.run(self.command([path], json_path), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False)
        with open(json_path, encoding='utf-8') as f:
            run = json.load(f)['runs'][0]
        os.unlink(json_path)
        return proc.returncode, run
