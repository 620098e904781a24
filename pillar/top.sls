# Every machine sees the topology (its peers' addresses). Secrets come from
# /srv/lemp-ha-secrets/minions/<id>.sls on the master: GPG-encrypted, one
# file per machine holding only what that machine's roles use
# (pillar/secrets.spec.yaml says which).
base:
  '*':
    - topology
  '{{ grains['id'] }}':
    - ignore_missing: True
    - minions.{{ grains['id'] }}
