from freight.cli import main

main()
