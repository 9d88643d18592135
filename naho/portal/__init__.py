"""The patient portal (/portail): accounts, activation, proxies, and the patient's own pages.

`naho.portal.service.PortalDoor` is how a patient's account reaches its own record (or a child's).
"""
