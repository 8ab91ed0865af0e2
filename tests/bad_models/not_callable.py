# target: Net
# expect: 'Net' in | is not a class or a function | received: str
Net = "resnet18"
