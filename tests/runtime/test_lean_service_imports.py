"""`grantline run` keeps what a service does not use out of its process (issue 21 item 6: RSS at rest)."""

import json
import subprocess
import sys
import textwrap

# A fresh interpreter: the test session itself has everything loaded.
_PROBE = textwrap.dedent(
    """
    import json, sys
    import grantline.cli.service_entry
    # What run_service imports before it builds the runtime, then the service's own wiring.
    from grantline.runtime.nats.tls import NatsTlsError
    from grantline.runtime.service_runtime import StartUpError
    from grantline.runtime.settings import KeySetError, MissingProductionSetting
    import grantline.refresher.app
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules))))
    """
)


def test_a_service_that_signs_no_grant_and_exports_no_span_loads_neither_library() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    assert "jwt" not in loaded  # PyJWT: only services that sign or verify run grants
    assert "cryptography" not in loaded
    assert "opentelemetry.sdk" not in loaded  # only when spans are exported somewhere
