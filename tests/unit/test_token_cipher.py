"""Access tokens at rest: encrypted with the first key of a ring, readable with any, re-encrypted on rotation."""

import pytest
from cryptography.fernet import Fernet

from fulfillment.security import TokenCipher

TOKEN = "shpat_0123456789abcdef0123456789abcdef"


def test_round_trip():
    cipher = TokenCipher([Fernet.generate_key().decode()])
    assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN


def test_ciphertext_does_not_contain_the_token():
    cipher = TokenCipher([Fernet.generate_key().decode()])
    ciphertext = cipher.encrypt(TOKEN)
    assert TOKEN not in ciphertext
    assert TOKEN[6:] not in ciphertext


def test_same_token_encrypts_differently_each_time():
    cipher = TokenCipher([Fernet.generate_key().decode()])
    assert cipher.encrypt(TOKEN) != cipher.encrypt(TOKEN)


def test_keys_may_be_bytes():
    cipher = TokenCipher([Fernet.generate_key()])
    assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN


def test_decrypt_with_a_wrong_key_raises_value_error():
    ciphertext = TokenCipher([Fernet.generate_key().decode()]).encrypt(TOKEN)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        TokenCipher([Fernet.generate_key().decode()]).decrypt(ciphertext)


def test_decrypt_of_garbage_raises_value_error():
    with pytest.raises(ValueError):
        TokenCipher([Fernet.generate_key().decode()]).decrypt("not-a-ciphertext")


def test_an_empty_ring_is_refused():
    with pytest.raises(ValueError):
        TokenCipher([])


def test_ring_with_new_key_first_still_reads_old_ciphertexts():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_ciphertext = TokenCipher([old]).encrypt(TOKEN)

    assert TokenCipher([new, old]).decrypt(old_ciphertext) == TOKEN


def test_ring_encrypts_with_its_first_key_only():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ciphertext = TokenCipher([new, old]).encrypt(TOKEN)

    assert TokenCipher([new]).decrypt(ciphertext) == TOKEN
    with pytest.raises(ValueError):
        TokenCipher([old]).decrypt(ciphertext)


def test_rotate_re_encrypts_under_the_new_key_so_the_old_key_can_be_dropped():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_ciphertext = TokenCipher([old]).encrypt(TOKEN)
    with pytest.raises(ValueError):
        TokenCipher([new]).decrypt(old_ciphertext)

    rotated = TokenCipher([new, old]).rotate(old_ciphertext)

    assert rotated != old_ciphertext
    assert TokenCipher([new]).decrypt(rotated) == TOKEN
    with pytest.raises(ValueError):
        TokenCipher([old]).decrypt(rotated)


def test_from_setting_reads_a_comma_separated_ring():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_ciphertext = TokenCipher([old]).encrypt(TOKEN)
    cipher = TokenCipher.from_setting(f" {new} , {old} ,", fallback_secret="unused")

    assert cipher.decrypt(old_ciphertext) == TOKEN
    assert TokenCipher([new]).decrypt(cipher.encrypt(TOKEN)) == TOKEN


def test_from_empty_setting_derives_a_stable_key_from_the_secret():
    ciphertext = TokenCipher.from_setting("", "dev-secret-key").encrypt(TOKEN)

    assert TokenCipher.from_setting("", "dev-secret-key").decrypt(ciphertext) == TOKEN
    assert TokenCipher.from_setting(" , ", "dev-secret-key").decrypt(ciphertext) == TOKEN
    with pytest.raises(ValueError):
        TokenCipher.from_setting("", "another-secret").decrypt(ciphertext)
