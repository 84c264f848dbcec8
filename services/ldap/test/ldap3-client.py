"""python3-ldap3 as an application uses it: get_info=ALL loads the root DSE and the
subschema, then searches are typed by it. Prints JSON for the test to check.

usage: ldap3-client.py URL BIND_DN PASSWORD BASE [BASE...]
"""
import json
import sys

from ldap3 import ALL, ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES, SUBTREE, Connection, Server
from ldap3.protocol.oid import CLASS_ABSTRACT, CLASS_AUXILIARY, CLASS_STRUCTURAL, ATTRIBUTE_USER_APPLICATION

url, bind_dn, password, *bases = sys.argv[1:]
server = Server(url, get_info=ALL, connect_timeout=10)
conn = Connection(server, bind_dn or None, password or None, auto_bind=True, receive_timeout=10)
schema = server.schema

KINDS = {CLASS_ABSTRACT: 'ABSTRACT', CLASS_STRUCTURAL: 'STRUCTURAL', CLASS_AUXILIARY: 'AUXILIARY'}


def names(values):
    return [v for v in (values or [])]


out = {
    'subschemaSubentry': server.info.schema_entry if server.info else None,
    'schemaLoaded': bool(schema and schema.attribute_types),
    'attributeTypes': {},
    'objectClasses': {},
    'entries': [],
}
if out['schemaLoaded']:
    for key, a in schema.attribute_types.items():
        out['attributeTypes'][key.lower()] = {
            'oid': a.oid,
            'names': names(a.name),
            'syntax': a.syntax,
            'singleValue': bool(a.single_value),
            'superior': names(a.superior),
            'operational': a.usage not in (None, ATTRIBUTE_USER_APPLICATION),
        }
    for key, c in schema.object_classes.items():
        out['objectClasses'][key.lower()] = {
            'oid': c.oid,
            'kind': KINDS.get(c.kind),
            'superior': names(c.superior),
            'must': names(c.must_contain),
            'may': names(c.may_contain),
        }

for base in bases:
    conn.search(base, '(objectClass=*)', SUBTREE, attributes=[ALL_ATTRIBUTES, ALL_OPERATIONAL_ATTRIBUTES])
    for e in conn.response:
        if e.get('type') != 'searchResEntry':
            continue
        # Each value with the Python type ldap3 gave it, as the schema told it to.
        typed = {k: {'type': type(v).__name__, 'value': v} for k, v in e['attributes'].items()}
        out['entries'].append({'dn': e['dn'], 'attributes': typed})

conn.unbind()
print(json.dumps(out, default=str))
