from dipcli.entry import run

run()
