from tykky.cli import main

main()
