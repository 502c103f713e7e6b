from dipcli.cli import run

run()
