"""The fake OpenStack's entry point and import path: `from fake_openstack import FakeOpenStack`, and

    python3 tests/fakes/fake_openstack.py --port 0 [--config fake.json] [--port-file F] [--swift-port N]

The fake itself is the package openstack/ beside this file, one module per service behind one
router (openstack/__init__.py: FakeOpenStack, the dispatch, the request log and the control API):
keystone.py, nova.py, swift.py, designate.py, faults.py, and wire.py for the HTTP plumbing they
share. See README.md.
"""
import os
import sys

# The package is found beside this file, ahead of anything else named `openstack` (openstacksdk).
_HERE = os.path.dirname(os.path.abspath(__file__))
if not sys.path or os.path.abspath(sys.path[0] or os.curdir) != _HERE:
    sys.path.insert(0, _HERE)

from openstack import FakeOpenStack, main  # noqa: E402

__all__ = ["FakeOpenStack", "main"]

if __name__ == "__main__":
    sys.exit(main())
