from sftlens.cli import main

main()
