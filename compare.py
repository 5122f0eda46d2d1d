from transferlab.cli import compare

if __name__ == "__main__":
    compare()
