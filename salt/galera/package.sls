{%- from 'galera/map.jinja' import galera with context %}

{#- Debian's postinst starts a standalone (non-wsrep) server on first
    install; it holds no cluster state (no grastate.dat) and is stopped by
    galera.bootstrap / galera.join when the orchestration forms the cluster. #}
galera-packages-installed:
  pkg.installed:
    - pkgs: {{ galera.packages | json }}
