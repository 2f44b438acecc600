"""Operations tools run from the command line: backups as BagIt bags, and fsck."""
