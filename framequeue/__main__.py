from framequeue.cli import main

main()
