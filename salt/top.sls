# The controller's top file: what a highstate applies to the minions it made.
# Environments (containers) carry corpus:role "environment" in their pillar.
base:
  'corpus:role:environment':
    - match: pillar
    - corpus.environment
