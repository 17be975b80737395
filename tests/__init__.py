"""The test suite. A package so that ``tests.support`` imports the same way from the repository root (CI runs
``python3 -m pytest`` there) and when one file is run on its own: pytest puts the folder above the topmost
package, the repository root, on ``sys.path`` before it loads ``tests/conftest.py``."""
