"""Teleconsultation: the room of a video appointment, its waiting room, WebRTC signalling over
an authenticated websocket, and the note that goes to the record (naho.telehealth.service)."""
