"""lifecycle/integrity/keycodec.py: cryptography's own objects, and SSH key blobs as OpenSSH writes them."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from lifecycle.integrity import keycodec


def test_the_loaders_and_formats_are_the_public_packages_own() -> None:
    """If an upgrade moves them, this fails (and keycodec falls back to the public package)."""
    assert keycodec.load_pem_public_key is serialization.load_pem_public_key
    assert keycodec.load_pem_private_key is serialization.load_pem_private_key
    assert keycodec.Encoding is serialization.Encoding
    assert keycodec.PublicFormat is serialization.PublicFormat


def test_importing_it_loads_no_ssh_or_cipher_module() -> None:
    code = ("import sys; import lifecycle.integrity.keycodec; "
            "print(sorted(m for m in sys.modules if m.startswith('cryptography.hazmat.primitives.'"
            "'serialization') or '.ciphers' in m))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


KEYS = {
    "ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
    "rsa-1024-e3": lambda: rsa.generate_private_key(3, 1024),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "rsa-3072": lambda: rsa.generate_private_key(65537, 3072),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_the_ssh_blob_is_the_one_cryptography_writes(kind: str) -> None:
    for _ in range(4):  # moduli and points with and without their top bit set
        public = KEYS[kind]().public_key()
        openssh = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        assert keycodec.ssh_public_blob(public) == base64.b64decode(openssh.split()[1])


def test_a_curve_openssh_has_no_name_for_is_refused() -> None:
    with pytest.raises(ValueError, match="no OpenSSH encoding"):
        keycodec.ssh_public_blob(ec.generate_private_key(ec.SECP256K1()).public_key())  # type: ignore[arg-type]
