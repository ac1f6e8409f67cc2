from r2v.cli import main

main()
