"""Secure health messaging (MSSanté): test PKI, S/MIME sign+encrypt, IHE XDM packages.

Pure building blocks: no database, no SMTP. The outbox-driven sending, the directory and the
inbound mailbox are built on top of these modules.
"""
