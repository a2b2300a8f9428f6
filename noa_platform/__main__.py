from noa_platform.cli import main

main()
