"""Logins as real clients make them, each from a chosen loopback source address.

usage: login-attempts.py IMAP_PORT LDAP_PORT < attempts.json
attempts: [{"protocol": "imap" | "ldap", "source": "127.0.0.21", "login": "erin", "password": "..."}]
prints one JSON list: true for each attempt the server accepted.
"""
import imaplib
import json
import socket
import sys

from ldap3 import Connection, Server

imap_port, ldap_port = int(sys.argv[1]), int(sys.argv[2])


class SourcedIMAP(imaplib.IMAP4):
    """imaplib with the client socket bound to a source address (what a second machine would be)."""

    def __init__(self, source, port):
        self.source = source
        super().__init__('127.0.0.1', port, timeout=20)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def imap(a):
    m = SourcedIMAP(a['source'], imap_port)
    try:
        # quoted like any client quotes a login with spaces: the server sees the string exactly
        m.login(m._quote(a['login']), a['password'])
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except Exception:
            pass


def ldap(a):
    c = Connection(Server('127.0.0.1', port=ldap_port), user=f"cn={a['login']},ou=users,dc=cloudron", password=a['password'], source_address=a['source'], source_port=0)
    try:
        return bool(c.bind())
    finally:
        c.unbind()


print(json.dumps([{'imap': imap, 'ldap': ldap}[a['protocol']](a) for a in json.load(sys.stdin)]))
