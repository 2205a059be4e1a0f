# -*- coding: utf-8 -*-
# Copyright: Contributors to the bakery.ami project
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hostile-input corpus: inputs an attacker or a careless user would give each module.

- corpus.py: the case model, the case trees and decoys, the runner (one playbook per module)
  and the judge of the three properties;
- trees.py: the image trees a case runs on (fixture trees, small Debian 12 and 13 trees taken
  from the harness's images, dirty trees) and the decoy trees outside them;
- readonly.py: the safety net the playbooks run in (host file systems read-only);
- cases_<module>.py: each module's cases (the generalize role's through its variables).

tests/reliability/test_bad_input.py runs the corpus.
"""
