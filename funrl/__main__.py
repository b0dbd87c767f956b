from funrl.cli import entry

entry()
