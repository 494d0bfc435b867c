"""Test certificates for `FakeProviderServer(tls=True)`, made at run time by trustme.

trustme is imported only here and only when TLS is asked for, so plain-text use
of the fake server needs nothing beyond the library's own dependencies.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile

__all__ = ["TestCertificates"]

_INSTALL_HINT = (
    "FakeProviderServer(tls=True) needs the 'trustme' package; install it with "
    "`pip install 'ailib_sc[testing]'`"
)


class TestCertificates:
    """A throw-away CA, a server certificate it signed, and the CA's PEM file.

    The certificate is valid for ``localhost``, ``127.0.0.1`` and ``::1``.  The PEM
    file lives in a private temporary directory that `remove` deletes.

    Args:
        alpn: The protocols the server context offers, most preferred first.

    Raises:
        RuntimeError: trustme is not installed.
    """

    __test__ = False  # not a pytest test class, whatever its name says
    __slots__ = ("_ca", "_directory", "ca_file", "server_context")

    def __init__(self, alpn: tuple[str, ...]) -> None:
        try:
            import trustme
        except ImportError as exc:
            raise RuntimeError(_INSTALL_HINT) from exc
        self._ca = trustme.CA(organization_name="ailib_sc FakeProviderServer")
        cert = self._ca.issue_cert("localhost", "127.0.0.1", "::1")
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server_context)
        self.server_context.set_alpn_protocols(list(alpn))
        self._directory = tempfile.mkdtemp(prefix="ailib_sc-fake-ca-")
        self.ca_file = os.path.join(self._directory, "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_file)

    def client_context(self) -> ssl.SSLContext:
        """Return a new client context that trusts only the test CA."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self._ca.configure_trust(context)
        return context

    def remove(self) -> None:
        """Delete the CA's PEM file and its directory."""
        shutil.rmtree(self._directory, ignore_errors=True)
