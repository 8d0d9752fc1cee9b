"""The README's fault matrix is the list of fault tests: generated from their @fault decorators, never edited by
hand, and covering every fault of the adversarial review (1-18)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("fault_matrix", os.path.join(ROOT, "tools", "fault_matrix.py"))
fault_matrix = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fault_matrix)


def test_the_readme_s_fault_matrix_is_generated_from_the_tests():
    with open(fault_matrix.README) as fh:
        assert fault_matrix.readme_table(fh.read()) == fault_matrix.table(), \
            "run tools/fault_matrix.py --write after changing a fault test"


def test_every_reviewed_fault_has_a_test():
    assert {row[0] for row in fault_matrix.rows()} == set(range(1, 19))
