{#- Zabbix configured through its API (_modules/lemp_zabbix.py, thin states
    in _states/lemp_zabbix.py): each state compares before it writes, so a
    second run changes nothing. Settings: pillar zabbix:lookup:server:api
    (defaults.yaml). Bad settings stop the render here (lemp_zabbix.validate)
    and, against the server's templates, the first state: nothing changes. #}
{%- from 'zabbix/map.jinja' import zabbix, topology, api_url with context %}
{%- set api = zabbix.server.api %}
{%- do salt['lemp_secret.require']('zabbix:server:admin_password') %}
{%- do salt['lemp_secret.require']('zabbix:server:agent_psks') %}
{#- the repo's templates, cached on mon1 for the API client to read #}
{%- set template_files = salt['cp.cache_dir']('salt://zabbix/server/files/templates') | select('match', '.*[.]yaml$') | sort %}
{#- templates a role names: ones Zabbix ships (api.shipped_templates) or the repo's #}
{%- set checked = salt['lemp_zabbix.validate'](api, salt['lemp_zabbix.render_known_templates'](api.shipped_templates, template_files)) %}
{%- do salt['lemp_zabbix.validate_ops'](api) %}
{%- set role_groups = checked.roles.values() | map(attribute='group') | unique | sort %}
{%- set ca = zabbix.server.ca_file %}
include:
  - zabbix.server.service
  - zabbix.server.frontend
  - zabbix.server.mail

zabbix-api-admin-default-password-replaced:
  lemp_zabbix.admin_password_set:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - require:
      - lemp_service: zabbix-server-runs-its-current-configuration
      - lemp_service: zabbix-frontend-nginx-runs-its-current-configuration
      - lemp_service: zabbix-frontend-php-fpm-runs-its-current-configuration
      - file: zabbix-api-ca-certificate-file-managed

zabbix-api-settings-valid-before-any-change:
  lemp_zabbix.settings_valid:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - template_files: {{ template_files | json }}
    - require:
      - lemp_zabbix: zabbix-api-admin-default-password-replaced

zabbix-api-host-groups-present:
  lemp_zabbix.host_groups_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - groups: {{ ([api.base_group] + role_groups) | json }}
    - require:
      - lemp_zabbix: zabbix-api-settings-valid-before-any-change

zabbix-api-repo-templates-imported:
  lemp_zabbix.templates_imported:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - files: {{ template_files | json }}
    - require:
      - lemp_zabbix: zabbix-api-settings-valid-before-any-change

{#- Zabbix 6.0 takes an agent's own PSK only for a host it knows: every
    machine of the topology is made a host with its PSK before its agent
    registers; autoregistration then adds its roles' groups and templates. #}
zabbix-api-agent-hosts-present-with-their-psk:
  lemp_zabbix.agent_hosts_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - base_group: {{ api.base_group }}
    - require:
      - lemp_zabbix: zabbix-api-host-groups-present

{#- web tier: where the shipped templates find the status pages (host
    macros win over every template's, so they are set per host). #}
zabbix-api-packaged-hosts-disabled:
  lemp_zabbix.hosts_disabled:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - hosts: {{ (api.disabled_hosts or []) | json }}
    - require:
      - lemp_zabbix: zabbix-api-settings-valid-before-any-change

{#- Autoregistration links a role's templates when a host first registers;
    a template added to a role later reaches registered hosts through this. #}
zabbix-api-role-groups-and-templates-on-each-host:
  lemp_zabbix.role_links_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-agent-hosts-present-with-their-psk
      - lemp_zabbix: zabbix-api-repo-templates-imported

zabbix-api-role-macros-on-each-host:
  lemp_zabbix.role_macros_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-agent-hosts-present-with-their-psk

zabbix-api-autoregistration-action-per-role:
  lemp_zabbix.autoregistration_actions:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-host-groups-present
      - lemp_zabbix: zabbix-api-repo-templates-imported

zabbix-api-email-media-through-local-mta:
  lemp_zabbix.email_media:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - smtp: {{ api.smtp | json }}
    - require:
      - lemp_zabbix: zabbix-api-settings-valid-before-any-change
      - lemp_service: zabbix-mail-exim4-runs-its-current-configuration

zabbix-api-user-groups-present:
  lemp_zabbix.user_groups_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-host-groups-present

zabbix-api-users-present:
  lemp_zabbix.users_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-user-groups-present
      - lemp_zabbix: zabbix-api-email-media-through-local-mta

zabbix-api-problems-mailed-to-ops:
  lemp_zabbix.alert_action:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-users-present

{#- --- maintenance windows, webhook media, dashboard --- #}
{#- The webhook media type (script salt/zabbix/server/files/webhook.js), a
    user holding it and the action posting problems to it; nothing when
    zabbix:lookup:server:api:webhook is empty. #}
zabbix-api-webhook-media-user-and-action:
  lemp_zabbix.webhook_media:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - script_file: {{ salt['cp.cache_file']('salt://zabbix/server/files/webhook.js') }}
    - require:
      - lemp_zabbix: zabbix-api-user-groups-present

{#- "Platform overview": items looked up by key pattern now; a widget whose
    template has no item yet is skipped (named in the comment) and added
    by a later run. Items that low-level discovery creates (HAProxy's
    frontends) come after the run: they are shown through their item
    prototypes (a graph prototype widget per host), which the template
    link creates, so a discovery changes nothing here and needs no run
    (lemp_zabbix.template_itemids). #}
zabbix-api-platform-overview-dashboard-present:
  lemp_zabbix.dashboard_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - settings: {{ api | json }}
    - require:
      - lemp_zabbix: zabbix-api-user-groups-present
      - lemp_zabbix: zabbix-api-agent-hosts-present-with-their-psk
      # its items come with the templates linked there: one run, not two
      - lemp_zabbix: zabbix-api-role-groups-and-templates-on-each-host
{#- --- end of maintenance windows, webhook media, dashboard --- #}

{#- --- db/lb templates: the facts of the topology the repo's templates read
    (the Galera size with its voting garbd, the VIP, the domain) as global
    macros, computed by lemp_zabbix.global_macros. (The shipped MySQL
    template's DSN and user are host macros of role db, set above with the
    other roles' macros.) #}
zabbix-api-global-macros-from-topology:
  lemp_zabbix.global_macros_present:
    - url: {{ api_url }}
    - ca_file: {{ ca }}
    - macros: {{ salt['lemp_zabbix.global_macros'](topology) | json }}
    - require:
      - lemp_zabbix: zabbix-api-settings-valid-before-any-change
    - require_in:
      - lemp_zabbix: zabbix-api-repo-templates-imported
{#- --- end of db/lb templates --- #}
