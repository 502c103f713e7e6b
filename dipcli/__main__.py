from dipcli.cli.entry import run

run()
