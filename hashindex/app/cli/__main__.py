from hashindex.app.cli import main

main()
