from transferlab.cli import train

if __name__ == "__main__":
    train()
