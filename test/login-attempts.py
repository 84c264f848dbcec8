"""Logins as real clients make them, each from a chosen loopback source address.

usage: login-attempts.py IMAP_PORT LDAP_PORT [--until-refused SECONDS] < attempts.json
attempts: [{"protocol": "imap" | "ldap", "source": "127.0.0.21", "login": "erin", "password": "...", "host": "127.0.0.1"}]
("host", the server's address, is optional: 127.0.0.1)
prints one JSON list: true for each attempt the server accepted.
With --until-refused: repeats every attempt until the server refuses it (at most SECONDS in all) and
prints, for each, the time.time() of its first refusal (null if it never was): what a poller sees
when an account is disabled elsewhere, without a process start between tries.
"""
import imaplib
import json
import socket
import sys
import time

from ldap3 import Connection, Server

imap_port, ldap_port = int(sys.argv[1]), int(sys.argv[2])


class SourcedIMAP(imaplib.IMAP4):
    """imaplib with the client socket bound to a source address (what a second machine would be)."""

    def __init__(self, host, source, port):
        self.source = source
        super().__init__(host, port, timeout=20)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def imap(a):
    m = SourcedIMAP(a.get('host', '127.0.0.1'), a['source'], imap_port)
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
    c = Connection(Server(a.get('host', '127.0.0.1'), port=ldap_port), user=f"cn={a['login']},ou=users,dc=cloudron", password=a['password'], source_address=a['source'], source_port=0)
    try:
        return bool(c.bind())
    finally:
        c.unbind()


def attempt(a):
    return {'imap': imap, 'ldap': ldap}[a['protocol']](a)


def until_refused(attempts, seconds):
    refused_at = [None] * len(attempts)
    deadline = time.time() + seconds
    while time.time() < deadline and None in refused_at:
        for i, a in enumerate(attempts):
            if refused_at[i] is None and not attempt(a):
                refused_at[i] = time.time()
    return refused_at


attempts = json.load(sys.stdin)
if len(sys.argv) > 4 and sys.argv[3] == '--until-refused':
    print(json.dumps(until_refused(attempts, float(sys.argv[4]))), flush=True)
else:
    print(json.dumps([attempt(a) for a in attempts]))
