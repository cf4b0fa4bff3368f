from orchtui.cli import main

main()
