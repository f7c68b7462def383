{#- An environment (container) made by the controller: what it is, who may log in,
    and where its projects live. Everything comes from its pillar (corpus ext_pillar). #}
{%- set env = salt['pillar.get']('corpus:env', {}) %}
{%- set creds = salt['pillar.get']('corpus:credentials', {}) %}
{%- set fw = salt['pillar.get']('corpus:firewall', {}) %}

corpus-environment-description:
  file.serialize:
    - name: /etc/corpus/environment.json
    - makedirs: True
    - mode: '0644'
    - serializer: json
    - dataset:
        name: {{ env.get('name')|json }}
        uuid: {{ env.get('uuid')|json }}
        type: {{ env.get('type')|json }}
        mode: {{ env.get('mode')|json }}
        domains: {{ env.get('domains', [])|json }}
        node: {{ env.get('node')|json }}
        ssh: {{ fw.get('ssh', {})|json }}

corpus-environment-motd:
  file.managed:
    - name: /etc/motd
    - contents: |
        {{ env.get('name') }} ({{ env.get('type') }}, {{ env.get('mode') }} mode) on node {{ env.get('node') }}
        Domains: {{ env.get('domains', [])|join(', ') }}
        Projects: {{ salt['pillar.get']('mc_project:projects_root', '/srv/projects') }}

{%- for key in creds.get('root_authorized_keys', []) %}
corpus-root-key-{{ loop.index }}:
  ssh_auth.present:
    - user: root
    - name: {{ key|json }}
{%- endfor %}

{%- set projects_root = salt['pillar.get']('mc_project:projects_root', '/srv/projects') %}
{%- set bindir = grains['pythonexecutable'].rsplit('/', 1)[0] %}
corpus-projects-root:
  file.directory:
    - name: {{ projects_root }}
    - makedirs: True

{#- The apps come back when the container restarts (a reboot, enlarge, trim):
    each deployed project's supervisord starts its web process. #}
corpus-projects-unit:
  file.managed:
    - name: /etc/systemd/system/corpus-projects.service
    - contents: |
        [Unit]
        Description=corpus: start the apps of the projects deployed here
        After=network.target

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/sh -c 'for conf in {{ projects_root }}/*/supervisor/supervisord.conf; do [ -f "$conf" ] && {{ bindir }}/supervisord -c "$conf"; done; true'

        [Install]
        WantedBy=multi-user.target

{#- What systemctl enable makes, without asking systemd: the unit is for the next boot. #}
corpus-projects-unit-enabled:
  file.symlink:
    - name: /etc/systemd/system/multi-user.target.wants/corpus-projects.service
    - target: /etc/systemd/system/corpus-projects.service
    - makedirs: True
    - require:
      - file: corpus-projects-unit
