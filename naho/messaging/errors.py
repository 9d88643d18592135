"""Errors named after the rule a message or package broke. Every refusal is one of these."""

from __future__ import annotations


class MessagingError(Exception):
    """Base of every refusal raised by naho.messaging."""


class PkiConfigurationInvalid(MessagingError):
    """A certificate or key named in configuration is missing, unreadable or does not match."""


# S/MIME, in the order the checks run on an inbound message.
class MessageMalformed(MessagingError):
    """The message is not well-formed MIME / CMS."""


class MessageNotEncrypted(MessagingError):
    """MSSanté mail must be S/MIME enveloped; plain or signed-only mail is refused."""


class MessageNotForUs(MessagingError):
    """The envelope cannot be opened with our key: we are not among its recipients."""


class MessageNotSigned(MessagingError):
    """The decrypted content carries no S/MIME signature."""


class SignatureInvalid(MessagingError):
    """The signature does not match the content: the message was altered or forged."""


class SignerNotTrusted(MessagingError):
    """The signer's certificate does not chain to a trusted authority, is expired or unfit."""


class SignerAddressMismatch(MessagingError):
    """The signing certificate's e-mail address is not the message's From address."""


# IHE XDM
class XdmPackageInvalid(MessagingError):
    """The XDM zip is not a well-formed IHE XDM package."""


class XdmUnsafePath(XdmPackageInvalid):
    """An entry's path would leave the archive (zip slip) or is otherwise unsafe."""


class XdmTooLarge(XdmPackageInvalid):
    """The archive or one of its entries exceeds the configured limits (zip bomb guard)."""


class XdmDocumentMismatch(XdmPackageInvalid):
    """A document's SHA-1 or size differs from METADATA.XML, or a listed document is missing."""
